"""The requests of each workload, built from a sample of the loaded data.

Every workload is a list of `Request`s that the load generator cycles through, so ids, subjects
and bodies vary without per-request work in the generator.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from bench.driver import Request
from fhir_mappings.fhir_json import dumps
from seed import Unit
from seed.codes import LOINC, SID_DNI, SNOMED, UCUM

FHIR = "/fhir"
SAMPLE = 2000  # distinct ids/bodies per workload: enough to defeat trivial caching


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
            elif t == "Patient":
                for ident in r.get("identifier", []):
                    if ident["system"] == SID_DNI:
                        self._keep(d.dnis, "dnis", ident["value"])
            elif t == "Observation":
                self._keep(d.observations, "observations", r["id"])
                if r["code"]["coding"][0]["code"] == "718-7":
                    self._keep(d.hb_subjects, "hb_subjects", r["subject"]["reference"].split("/", 1)[1])


def _now() -> str:
    return datetime.now(UTC).astimezone().isoformat(timespec="seconds")


def _hb(subject: str, chw: str, value: float, encounter: str | None = None) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": "718-7", "display": "Hemoglobin [Mass/volume] in Blood"}]},
        "subject": {"reference": subject}, "effectiveDateTime": _now(),
        "performer": [{"reference": f"Practitioner/{chw}"}],
        "valueQuantity": {"value": value, "unit": "g/dL", "system": UCUM, "code": "g/dL"},
    }
    if encounter:
        obs["encounter"] = {"reference": encounter}
    return obs


def _vital(subject: str, chw: str, code: str, display: str, value: float, unit: str,
           encounter: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
        "subject": {"reference": subject}, "encounter": {"reference": encounter},
        "effectiveDateTime": _now(), "performer": [{"reference": f"Practitioner/{chw}"}],
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


def observation_bodies(ds: Dataset, n: int = SAMPLE) -> list[bytes]:
    rng = random.Random(ds.seed + 1)
    return [dumps(_hb(f"Patient/{rng.choice(ds.children)}", rng.choice(ds.chws), round(rng.gauss(11.2, 1.1), 1)))
            for _ in range(n)]


def visit_entries(ds: Dataset, rng: random.Random) -> list[dict[str, Any]]:
    """A CHW's household visit as 8 transaction entries: encounter, 3 measurements, iron, vaccine,
    and a referral (ServiceRequest + Task), all cross-referenced through urn:uuid fullUrls."""
    child, chw = f"Patient/{rng.choice(ds.children)}", rng.choice(ds.chws)
    facility = f"Organization/{rng.choice(ds.facilities)}"
    urns = [f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}" for _ in range(8)]
    enc, _weight, _length, hb, _med, _imm, sr, _task = urns
    resources = [
        {"resourceType": "Encounter", "status": "finished",
         "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
         "subject": {"reference": child}, "participant": [{"individual": {"reference": f"Practitioner/{chw}"}}],
         "period": {"start": _now(), "end": _now()}},
        _vital(child, chw, "29463-7", "Body weight", round(rng.uniform(6, 18), 1), "kg", enc),
        _vital(child, chw, "8306-3", "Body height --lying", round(rng.uniform(60, 100), 1), "cm", enc),
        _hb(child, chw, round(rng.uniform(8.5, 10.4), 1), enc),
        {"resourceType": "MedicationStatement", "status": "active",
         "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc", "code": "B03AA07",
                                                   "display": "ferrous sulfate"}]},
         "subject": {"reference": child}, "effectivePeriod": {"start": _now()[:10]},
         "reasonReference": [{"reference": hb}]},
        {"resourceType": "Immunization", "status": "completed",
         "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "03", "display": "MMR"}]},
         "patient": {"reference": child}, "occurrenceDateTime": _now()[:10], "primarySource": False},
        {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
         "code": {"coding": [{"system": SNOMED, "code": "3457005", "display": "Patient referral"}]},
         "subject": {"reference": child}, "requester": {"reference": f"Practitioner/{chw}"},
         "performer": [{"reference": facility}], "reasonReference": [{"reference": hb}],
         "authoredOn": _now()},
        {"resourceType": "Task", "status": "requested", "intent": "order", "focus": {"reference": sr},
         "for": {"reference": child}, "owner": {"reference": facility}, "authoredOn": _now()},
    ]
    return [{"fullUrl": u, "resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
            for u, r in zip(urns, resources, strict=True)]


def transaction(entries: list[dict[str, Any]]) -> bytes:
    return dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})


def household_visit_bodies(ds: Dataset, n: int = SAMPLE) -> list[bytes]:
    """One visit per sampled child, as a CHW's day goes: a child is visited once, not four times an
    afternoon. (With 500 bodies for random children, wrk's cycling re-measured each child several
    times a day, and every repeat re-judged the day over all its earlier measurements.) The load
    generator still cycles the bodies when a run sends more requests than there are children."""
    rng = random.Random(ds.seed + 2)
    children = list(ds.children)
    rng.shuffle(children)
    return [transaction(visit_entries(replace(ds, children=[child]), rng)) for child in children[:n]]


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
    }


def everything_workload(ds: Dataset) -> list[Request]:
    return [Request("GET", f"{FHIR}/Patient/{c}/$everything") for c in ds.children]


def floor_workloads(ds: Dataset) -> dict[str, list[Request]]:
    return {
        "constant": [Request("GET", "/const")],
        "insert": [Request("POST", "/insert", b) for b in observation_bodies(ds)],
        "read": [Request("GET", f"/read/{i}") for i in ds.observations],
    }
