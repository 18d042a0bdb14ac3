"""The requests of each workload, built from a sample of the loaded data.

Every workload is a list of `Request`s that the load generator cycles through, so ids, subjects
and bodies vary without per-request work in the generator.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from bench.driver import Request
from fhir_mappings.fhir_json import dumps
from seed import Unit, growth
from seed.codes import HEIGHT_STANDING, LENGTH_LYING, LOINC, SID_DNI, SNOMED, UCUM, WEIGHT, Measure

FHIR = "/fhir"
SAMPLE = 2000  # distinct ids/bodies per workload: enough to defeat trivial caching
# Household visits are distinct (child, day) pairs: more than a 35 s run sends at 150/s, so the load
# generator never replays one. A replayed visit is the same child measured twice the same day, which
# makes the rules re-judge the day and undo the first visit's z-scores: work no CHW's day causes.
VISIT_BODIES = 6000
WARMUP_VISITS = 600


@dataclass(slots=True)
class Dataset:
    """What the harness knows about the data it loaded (a reservoir sample of the stream)."""

    seed: int
    children: list[str] = field(default_factory=list)
    dnis: list[str] = field(default_factory=list)
    observations: list[str] = field(default_factory=list)
    hb_subjects: list[str] = field(default_factory=list)
    facilities: list[str] = field(default_factory=list)
    chws: list[str] = field(default_factory=list)
    births: dict[str, tuple[date, int]] = field(default_factory=dict)  # child id -> (birth date, WHO sex 1/2)
    resources: int = 0
    load_started: datetime | None = None
    load_finished: datetime | None = None


class Sampler:
    """Pass units through unchanged while keeping a fixed-size uniform sample of useful ids."""

    def __init__(self, seed: int, size: int = SAMPLE) -> None:
        self.data = Dataset(seed=seed)
        self._rng = random.Random(seed)
        self._size = size
        self._seen: dict[str, int] = {}

    def _keep(self, bucket: list[str], name: str, value: str) -> None:
        n = self._seen.get(name, 0) + 1
        self._seen[name] = n
        if len(bucket) < self._size:
            bucket.append(value)
        else:
            j = self._rng.randrange(n)  # Algorithm R: every item kept with probability size/n
            if j < self._size:
                bucket[j] = value

    def __call__(self, units: Iterable[Unit]) -> Iterator[Unit]:
        d = self.data
        for unit in units:
            d.resources += len(unit.resources)
            if unit.kind == "programme":
                for r in unit.resources:
                    if r["resourceType"] == "Organization" and r.get("type", [{}])[0].get(
                            "coding", [{}])[0].get("code") == "prov":
                        d.facilities.append(r["id"])
                    elif r["resourceType"] == "PractitionerRole" and r["code"][0]["coding"][0]["code"] == "chw":
                        d.chws.append(r["practitioner"]["reference"].split("/", 1)[1])
            else:
                self._household(unit.resources)
            yield unit

    def _household(self, resources: list[dict[str, Any]]) -> None:
        d = self.data
        kids = {r["patient"]["reference"] for r in resources if r["resourceType"] == "RelatedPerson"}
        for r in resources:
            t = r["resourceType"]
            if t == "Patient" and f"Patient/{r['id']}" in kids:
                self._keep(d.children, "children", r["id"])
                d.births[r["id"]] = (date.fromisoformat(r["birthDate"]), 2 if r["gender"] == "female" else 1)
            elif t == "Patient":
                for ident in r.get("identifier", []):
                    if ident["system"] == SID_DNI:
                        self._keep(d.dnis, "dnis", ident["value"])
            elif t == "Observation":
                self._keep(d.observations, "observations", r["id"])
                if r["code"]["coding"][0]["code"] == "718-7":
                    self._keep(d.hb_subjects, "hb_subjects", r["subject"]["reference"].split("/", 1)[1])


def _now(days_ago: int = 0) -> str:
    return (datetime.now(UTC).astimezone() - timedelta(days=days_ago)).isoformat(timespec="seconds")


def _hb(subject: str, chw: str, value: float, encounter: str | None = None, when: str | None = None) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": "718-7", "display": "Hemoglobin [Mass/volume] in Blood"}]},
        "subject": {"reference": subject}, "effectiveDateTime": when or _now(),
        "performer": [{"reference": f"Practitioner/{chw}"}],
        "valueQuantity": {"value": value, "unit": "g/dL", "system": UCUM, "code": "g/dL"},
    }
    if encounter:
        obs["encounter"] = {"reference": encounter}
    return obs


def _vital(subject: str, chw: str, code: str, display: str, value: float, unit: str,
           encounter: str, when: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
        "subject": {"reference": subject}, "encounter": {"reference": encounter},
        "effectiveDateTime": when, "performer": [{"reference": f"Practitioner/{chw}"}],
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


def observation_bodies(ds: Dataset, n: int = SAMPLE) -> list[bytes]:
    rng = random.Random(ds.seed + 1)
    return [dumps(_hb(f"Patient/{rng.choice(ds.children)}", rng.choice(ds.chws), round(rng.gauss(11.2, 1.1), 1)))
            for _ in range(n)]


def _anthropometry(ds: Dataset, rng: random.Random, child: str, day: date) -> tuple[float, Measure, float]:
    """(weight kg, length measure, length cm) of a plausible child of that age and sex on `day`.

    Drawn like the generator's screenings: length from a length-for-age z-score, weight from a
    weight-for-length/height z-score, both centred where Peru's children are (stunting ~12 %, wasting
    ~1 %), so the rules flag as many children as a real programme sees. Values drawn without regard
    to age made 19 % of z-scores implausible and flagged 73 % of children.
    """
    birth, sex = ds.births[child]
    age = (day - birth).days
    length = growth.length_cm(sex, age, rng.gauss(-0.7, 1.1))
    weight = growth.weight_kg(sex, age, length, rng.gauss(0.3, 1.0))
    measure = HEIGHT_STANDING if age >= growth.STANDING_FROM_DAYS else LENGTH_LYING
    return round(weight, 1), measure, round(length, 1)


def visit_entries(ds: Dataset, rng: random.Random, child: str | None = None,
                  days_ago: int = 0) -> list[dict[str, Any]]:
    """A CHW's household visit as 8 transaction entries: encounter, 3 measurements, iron, vaccine,
    and a referral (ServiceRequest + Task), all cross-referenced through urn:uuid fullUrls.

    `child` defaults to a random sampled one; `days_ago` dates the visit (an app uploading after
    days offline)."""
    child_id = child or rng.choice(ds.children)
    subject, chw = f"Patient/{child_id}", rng.choice(ds.chws)
    facility = f"Organization/{rng.choice(ds.facilities)}"
    urns = [f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}" for _ in range(8)]
    enc, _weight, _length, hb, _med, _imm, sr, _task = urns
    when = _now(days_ago)
    weight, measure, length = _anthropometry(ds, rng, child_id, date.fromisoformat(when[:10]))
    resources = [
        {"resourceType": "Encounter", "status": "finished",
         "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
         "subject": {"reference": subject}, "participant": [{"individual": {"reference": f"Practitioner/{chw}"}}],
         "period": {"start": when, "end": when}},
        _vital(subject, chw, WEIGHT.loinc, WEIGHT.display, weight, "kg", enc, when),
        _vital(subject, chw, measure.loinc, measure.display, length, "cm", enc, when),
        _hb(subject, chw, round(rng.uniform(8.5, 10.4), 1), enc, when),
        {"resourceType": "MedicationStatement", "status": "active",
         "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc", "code": "B03AA07",
                                                   "display": "ferrous sulfate"}]},
         "subject": {"reference": subject}, "effectivePeriod": {"start": when[:10]},
         "reasonReference": [{"reference": hb}]},
        {"resourceType": "Immunization", "status": "completed",
         "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "03", "display": "MMR"}]},
         "patient": {"reference": subject}, "occurrenceDateTime": when[:10], "primarySource": False},
        {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
         "code": {"coding": [{"system": SNOMED, "code": "3457005", "display": "Patient referral"}]},
         "subject": {"reference": subject}, "requester": {"reference": f"Practitioner/{chw}"},
         "performer": [{"reference": facility}], "reasonReference": [{"reference": hb}],
         "authoredOn": when},
        {"resourceType": "Task", "status": "requested", "intent": "order", "focus": {"reference": sr},
         "for": {"reference": subject}, "owner": {"reference": facility}, "authoredOn": when},
    ]
    return [{"fullUrl": u, "resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
            for u, r in zip(urns, resources, strict=True)]


def transaction(entries: list[dict[str, Any]]) -> bytes:
    return dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})


def household_visit_bodies(ds: Dataset, n: int = VISIT_BODIES, first_day: int = 0) -> list[bytes]:
    """`n` visits, each child once a day, as CHWs' days go: every sampled child today, then every
    one again yesterday, and so on back from `first_day` days ago.

    A child visited twice the same day is not a household visit but its replay: the second one
    re-judges the day with both visits' measurements and deletes the first one's z-scores.
    """
    rng = random.Random(ds.seed + 2 + first_day)
    children = list(ds.children)
    rng.shuffle(children)
    return [transaction(visit_entries(ds, rng, children[i % len(children)], first_day + i // len(children)))
            for i in range(n)]


def household_visit_warmup(ds: Dataset, n: int = WARMUP_VISITS) -> list[bytes]:
    """Warm-up visits on days the measured ones do not use, so the run replays none of them."""
    days = -(-VISIT_BODIES // max(1, len(ds.children)))
    return household_visit_bodies(ds, n, first_day=days)


def big_transaction(ds: Dataset, index: int, entries: int = 1000) -> bytes:
    rng = random.Random(ds.seed * 31 + index)
    out: list[dict[str, Any]] = []
    while len(out) < entries:
        out.extend(visit_entries(ds, rng))
    return transaction(out[:entries])


def _q(value: str) -> str:
    return quote(value, safe="/:")


def puente_workloads(ds: Dataset) -> dict[str, list[Request]]:
    """Read-only workloads (run first, so writes do not change what they find)."""
    rng = random.Random(ds.seed + 3)
    assert ds.load_started and ds.load_finished
    span = ds.load_finished - ds.load_started
    # A clinic polls for what changed since its last pull: the newest ~1-2 % of the load.
    since = [(ds.load_started + span * f).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
             for f in (0.98, 0.99, 0.995)]
    return {
        "read_by_id": [Request("GET", f"{FHIR}/Observation/{i}") for i in ds.observations],
        "patient_by_identifier": [Request("GET", f"{FHIR}/Patient?identifier={_q(SID_DNI + '|' + v)}")
                                  for v in ds.dnis],
        "observation_search": [
            Request("GET", f"{FHIR}/Observation?subject=Patient/{s}&code={_q(LOINC + '|718-7')}&_sort=-date")
            for s in ds.hb_subjects],
        "referral_pull": [
            Request("GET", f"{FHIR}/ServiceRequest?performer=Organization/{rng.choice(ds.facilities)}"
                           f"&status=active&_lastUpdated=gt{rng.choice(since)}")
            for _ in range(200)],
        # A clinic's first page of referrals with their patients: 100 matches + up to 100 includes.
        "include_page": [
            Request("GET", f"{FHIR}/ServiceRequest?performer=Organization/{f}"
                           "&_include=ServiceRequest:subject&_count=100")
            for f in ds.facilities],
    }


def write_workloads(ds: Dataset) -> dict[str, list[Request]]:
    return {
        "create_observation": [Request("POST", f"{FHIR}/Observation", b) for b in observation_bodies(ds)],
        "household_visit": [Request("POST", FHIR, b) for b in household_visit_bodies(ds)],
        "mixed": mixed_workload(ds),
    }


def mixed_workload(ds: Dataset) -> list[Request]:
    """A programme's day at once: per cycle of ten requests, three CHW uploads (two single results,
    one household visit on days no other workload uses), three clinic polls
    for new referrals and four searches (a patient by DNI, a child's hemoglobin history, a read by
    id, a clinic's page of referrals with their patients). Writers and readers then contend for
    the same tables, locks and (SQLite) write turn."""
    reads = puente_workloads(ds)
    creates = [Request("POST", f"{FHIR}/Observation", b) for b in observation_bodies(ds)]
    after_warmup = -(-(VISIT_BODIES + WARMUP_VISITS) // max(1, len(ds.children)))  # days no other workload uses
    visits = [Request("POST", FHIR, b) for b in household_visit_bodies(ds, SAMPLE // 2, first_day=after_warmup)]
    polls, searches = reads["referral_pull"], [
        *reads["patient_by_identifier"][:50], *reads["observation_search"][:50], *reads["read_by_id"][:50],
        *reads["include_page"]]
    rng = random.Random(ds.seed + 7)
    out = []
    for n in range(min(len(creates) // 2, len(visits))):
        cycle = [creates[2 * n], creates[2 * n + 1], visits[n], *rng.sample(polls, 3), *rng.sample(searches, 4)]
        rng.shuffle(cycle)
        out.extend(cycle)
    return out


def warmup_workloads(ds: Dataset) -> dict[str, list[Request]]:
    """Workloads whose warm-up must not send what the measured run sends (it would replay it)."""
    return {"household_visit": [Request("POST", FHIR, b) for b in household_visit_warmup(ds)]}


def everything_workload(ds: Dataset) -> list[Request]:
    return [Request("GET", f"{FHIR}/Patient/{c}/$everything") for c in ds.children]


def floor_workloads(ds: Dataset) -> dict[str, list[Request]]:
    return {
        "constant": [Request("GET", "/const")],
        "insert": [Request("POST", "/insert", b) for b in observation_bodies(ds)],
        "read": [Request("GET", f"/read/{i}") for i in ds.observations],
    }
