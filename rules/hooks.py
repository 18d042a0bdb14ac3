"""WriteHook: after a measurement Observation is written, record (or undo) what follows from it.

- hemoglobin: a severe class (from the interpretation recorded just before the write) gives the
  `severe-anaemia` Flag and a draft referral;
- anthropometry: the patient's measurements of that day are scored together, one z-score
  Observation per indicator (id `{measurement}-{indicator}`, derivedFrom the measurements), and
  SAM (MUAC or WHZ) / severe stunting give Flags, SAM a draft referral.

A correction or a deletion re-judges the day (and patient) the measurement used to belong to, so
everything derived from the old value goes. All of it happens in the write's transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from clinical import AnaemiaClass, Indicator
from fhir_mappings import fhir_json
from rules.derived import (
    derived_id,
    flag_evidence,
    is_derived,
    referral_evidence,
    same_content,
    zscore_observation,
)
from rules.evidence import Finding, apply_finding, draft_slots, finding_keys
from rules.fhir_in import Kind, Measurement, Resource, birth_date, sex
from rules.growth_days import GrowthDay, anchored_indicators, growth_day
from rules.hemoglobin import own_anaemia_class
from rules.lookup import growth_evidence_of_day, latest_of_day
from rules.system import rules_repository, serialise_patients
from storage.repository import Deletions, FhirRepository, WriteEvent
from storage.versions import StoredVersion


@dataclass(frozen=True)
class _Change:
    source_id: str
    before: Measurement | None
    after: Measurement | None


class DerivedFacts:
    async def __call__(self, repository: FhirRepository, events: Sequence[WriteEvent]) -> None:
        changes, severe = _changes((e.version.resource_type, e.version.id, e.resource, e.previous) for e in events)
        anaemia, growth = _to_judge(changes, severe)
        if not anaemia and not growth:
            # A new hemoglobin that is not severe can change no finding: no lock, no reads (and on
            # PostgreSQL one round trip less for the measurement a CHW sends most).
            return
        rules = rules_repository(repository)
        patients = {m.patient_id for c in changes.values() for m in (c.before, c.after) if m is not None}
        if growth:
            # The children's Patients are context, not evidence (their writes do not take the lock):
            # read before the lock, the same answer (one snapshot per statement either way), and the
            # lock, which serialises a child's measurements, is held one round trip less. _growth
            # finds them in the repository's reads.
            await rules.read_many("Patient", _growth_patients(growth))
        # Two measurements of one child written at once must see each other (weight-for-length).
        await serialise_patients(rules, sorted(patients))
        if anaemia:
            # Its Flag and referral slots in one row-locking statement, while the lock is held.
            await rules.read_ahead(lock=True, keys=[key for f in anaemia for key in finding_keys(f.patient_id, f.kind)])
        for finding in anaemia:
            await apply_finding(rules, finding)
        if growth:
            await self._growth(rules, growth)

    def quiet_creation(self, resource_type: str, resource_id: str, resource: Resource) -> bool:
        """Whether creating `resource` writes nothing here: anything but a measurement, and a new
        hemoglobin that is not severe (storage.write_events.QuietCreation)."""
        changes, severe = _changes([(resource_type, resource_id, resource, None)])
        anaemia, growth = _to_judge(changes, severe)
        return not anaemia and not growth

    async def _growth(self, rules: FhirRepository, changes: list[_Change]) -> None:
        """Score every (patient, day) the changed measurements belong or belonged to, once each."""
        by_day: dict[tuple[str, dt.date], list[_Change]] = {}
        for change in changes:
            for m in (change.before, change.after):
                if m is not None and m.kind is not Kind.HEMOGLOBIN:
                    by_day.setdefault((m.patient_id, m.date), []).append(change)
        new = _new_references(changes)
        # What the written measurements may have had derived before (a new one has nothing yet).
        stale = {
            f"{c.source_id}:{indicator.value}": (c.source_id, indicator)
            for c in changes if c.before is not None
            for m in (c.before, c.after) if m is not None
            for indicator in anchored_indicators(m.kind)
        }
        produced: set[str] = set()
        derived: list[Resource] = []
        unseen: set[str] = set()  # ids of z-scores anchored on a measurement this write created
        findings: dict[tuple[str, str], Finding] = {}
        patients = await rules.read_many("Patient", _growth_patients(changes))
        for (patient_id, day), day_changes in sorted(by_day.items()):
            patient = patients.get(patient_id)
            content = None if patient is None or patient.content is None else fhir_json.loads_stored(patient.content)
            stored = await _stored_of_day(rules, changes, patient_id, day)
            growth = _score_day(changes, patient_id, day, stored, content)
            considered = frozenset(
                {*(f"Observation/{c.source_id}" for c in day_changes), *(m.reference for m in growth.considered)}
            )
            for m in growth.considered:
                if m.reference in new:
                    continue
                for indicator in anchored_indicators(m.kind):
                    stale[f"{m.id}:{indicator.value}"] = (m.id, indicator)
            if growth.result is not None:
                for indicator, scored in growth.result.indicators.items():
                    sources = growth.sources(indicator)
                    if scored.zscore is None or not sources:
                        continue
                    derived.append(zscore_observation(patient_id, growth, indicator, scored, growth.result.ruleset))
                    produced.add(f"{sources[0].id}:{indicator.value}")
                    if sources[0].reference in new:
                        unseen.add(derived[-1]["id"])
            for finding in _growth_findings(patient_id, growth, considered):
                key = (finding.kind, patient_id)
                previous = findings.get(key)
                if previous is not None:  # two days of one patient (a measurement changed date)
                    finding = Finding(finding.kind, patient_id, previous.considered | finding.considered,
                                      {**previous.supporting, **finding.supporting})
                findings[key] = finding
        candidates = [derived_id(source_id, indicator.value) for key, (source_id, indicator) in stale.items()
                      if key not in produced]
        await _put_derived(rules, derived, unseen, Deletions("Observation", candidates, _is_own_derived))
        for finding in findings.values():
            if _may_change_anything(finding, new):
                await apply_finding(rules, finding)


async def _stored_of_day(
    rules: FhirRepository, changes: list[_Change], patient_id: str, day: dt.date
) -> list[Measurement]:
    """What a day is judged on besides this write: its latest stored measurement of each slot (the
    ones that count) and those the patient's growth Flags and referral drafts still cite from it
    (a finding drops evidence it no longer shows). Nothing else of the day can change the outcome:
    every earlier write re-judged the day, so a measurement that is neither has no z-score left and
    is cited nowhere. The reads stay a few rows however many Observations the day holds."""
    # Taken from the events, not from what is stored (their previous content is what may be judged).
    written = {
        c.source_id for c in changes for m in (c.before, c.after) if m is not None and m.patient_id == patient_id
    }
    # What the rest of the judgement reads by id (the child's lock is held until the commit, so
    # every round trip here is one its other measurements wait for): the growth Flags and referral
    # slots (_cited, then applying the findings) and the z-scores of the day's latest measurements
    # (re-derived and compared, or undone). Row-locked: updating or undoing them then needs no
    # locked read of its own. On PostgreSQL the latest measurements' statement reads them too, and
    # the read_ahead below finds them there (a z-score whose id is a digest is read by it).
    findings = [key for kind in _GROWTH_FINDINGS for key in finding_keys(patient_id, kind)]
    latest = await latest_of_day(rules, patient_id, day, skip_ids=written, lock_ahead=findings)
    await rules.read_ahead(lock=True, keys=[
        *findings,
        *(("Observation", derived_id(m.id, indicator.value))
          for m in latest for indicator in anchored_indicators(m.kind)),
    ])
    cited_references = await _cited(rules, patient_id)
    # A Flag usually cites the day's latest measurements, already in hand: not read again.
    known = {m.id for m in latest}
    cited = await growth_evidence_of_day(rules, patient_id, day, cited_references, skip_ids=written | known)
    return latest + cited


async def _cited(rules: FhirRepository, patient_id: str) -> set[str]:
    """The references the patient's growth Flags and live derived referrals cite (read once per
    transaction: applying the findings reads the same resources again from the repository's cache)."""
    cited: set[str] = set()
    flags = await rules.read_many("Flag", [derived_id(patient_id, kind) for kind in _GROWTH_FINDINGS])
    for version in flags.values():
        if not version.deleted and version.content is not None:
            cited.update(flag_evidence(fhir_json.loads_stored(version.content)))
    for kind in _GROWTH_FINDINGS:
        for slot in draft_slots(patient_id, kind):  # the slots _apply_referral walks, as far as it does
            found = await rules.read_many("ServiceRequest", [slot])
            if not found:
                break
            for version in found.values():
                if not version.deleted and version.content is not None:
                    cited.update(referral_evidence(fhir_json.loads_stored(version.content)))
    return cited


_GROWTH_FINDINGS = ("sam", "severe-stunting")


def _score_day(
    changes: list[_Change], patient_id: str, day: dt.date, stored: list[Measurement], patient: Resource | None
) -> GrowthDay:
    """The patient's day judged from its stored measurements and those written now."""
    same_day = [m for m in stored if m.date == day]
    same_day.extend(
        c.after for c in changes
        if c.after is not None and c.after.kind is not Kind.HEMOGLOBIN
        and (c.after.patient_id, c.after.date) == (patient_id, day)
    )
    if patient is None:
        return growth_day(day, same_day, birth_date=None, sex=None)
    return growth_day(day, same_day, birth_date=birth_date(patient), sex=sex(patient))


def _growth_patients(changes: list[_Change]) -> list[str]:
    """The patients whose growth days the changes touch."""
    return sorted({m.patient_id for c in changes for m in (c.before, c.after)
                   if m is not None and m.kind is not Kind.HEMOGLOBIN})


def _new_references(changes: list[_Change]) -> frozenset[str]:
    return frozenset(f"Observation/{c.source_id}" for c in changes if c.before is None)


def _changes(
    written: Iterable[tuple[str, str, Resource | None, StoredVersion | None]],
) -> tuple[dict[str, _Change], dict[str, bool]]:
    """The measurements (type, id, resource or None when deleted, previous version) change: by source
    id, and whether each hemoglobin's own class is severe."""
    changes: dict[str, _Change] = {}
    severe: dict[str, bool] = {}  # hemoglobin source id -> its own class is severe
    for resource_type, source_id, resource, previous in written:
        if resource_type != "Observation":
            continue
        before = None
        if previous is not None and previous.content is not None and not previous.deleted:
            before = Measurement.from_observation(fhir_json.loads_stored(previous.content))
        after = Measurement.from_observation(resource)
        if before is None and after is None:
            continue
        earlier = changes.get(source_id)  # written twice in one batch: first before, last after
        changes[source_id] = _Change(source_id, earlier.before if earlier else before, after)
        if after is not None and after.kind is Kind.HEMOGLOBIN and resource is not None:
            severe[source_id] = own_anaemia_class(resource) == AnaemiaClass.SEVERE.value
    return changes, severe


def _to_judge(changes: dict[str, _Change], severe: dict[str, bool]) -> tuple[list[Finding], list[_Change]]:
    """The anaemia findings the changes may change, and the changes with growth to score."""
    hemoglobin = [c for c in changes.values() if Kind.HEMOGLOBIN in _kinds(c)]
    anaemia = _anaemia_findings(hemoglobin, severe) if hemoglobin else []
    return anaemia, [c for c in changes.values() if _kinds(c) - {Kind.HEMOGLOBIN}]


def _anaemia_findings(changes: list[_Change], severe: dict[str, bool]) -> list[Finding]:
    """The severe-anaemia findings, one per patient, that the hemoglobin changes may change."""
    considered: dict[str, set[str]] = {}
    supporting: dict[str, dict[str, dt.date]] = {}
    for change in changes:
        reference = f"Observation/{change.source_id}"
        for m in (change.before, change.after):
            if m is not None:
                considered.setdefault(m.patient_id, set()).add(reference)
                supporting.setdefault(m.patient_id, {})
        after = change.after
        if after is not None and after.kind is Kind.HEMOGLOBIN and severe.get(change.source_id):
            supporting[after.patient_id][reference] = after.date
    new = _new_references(changes)
    findings = (Finding("severe-anaemia", patient_id, frozenset(considered[patient_id]), supporting[patient_id])
                for patient_id in sorted(considered))
    return [finding for finding in findings if _may_change_anything(finding, new)]


def _may_change_anything(finding: Finding, new: frozenset[str]) -> bool:
    """A finding shown by nothing, judging only measurements that did not exist before this write,
    can neither add evidence nor remove any (no Flag or referral can cite them yet): skip its reads."""
    return bool(finding.supporting) or not finding.considered <= new


def _kinds(change: _Change) -> set[Kind]:
    return {m.kind for m in (change.before, change.after) if m is not None}


def _growth_findings(patient_id: str, growth: GrowthDay, considered: frozenset[str]) -> list[Finding]:
    sam: dict[str, dt.date] = {}
    stunting: dict[str, dt.date] = {}
    result = growth.result
    if result is not None:
        if "muac" in result.sam_criteria:
            sam.update((m.reference, growth.date) for m in growth.sources(Indicator.ACFA))
        if "whz" in result.sam_criteria:
            sam.update((m.reference, growth.date) for m in growth.sources(Indicator.WFLH))
        if result.severe_stunting:
            stunting.update((m.reference, growth.date) for m in growth.sources(Indicator.LHFA))
    return [Finding("sam", patient_id, considered, sam), Finding("severe-stunting", patient_id, considered, stunting)]


async def _put_derived(
    repository: FhirRepository, derived: list[Resource], unseen: set[str], undone: Deletions
) -> None:
    """Store the z-score Observations: new ones together, changed ones as new versions; and delete
    the `undone` ones (those that exist and are the rules' own, judged under their row locks).

    A z-score anchored on a measurement this write created has, in all likelihood, never been
    stored (its id is that measurement's id and the indicator): it is created without a look first,
    by the statement that also records the deletions (one round trip while the child's lock is
    held). Only an id found taken (a resurrected measurement's old z-score, someone else's
    resource) is read and judged like the rest.
    """
    first = [(r, r["id"]) for r in derived if r["id"] in unseen]
    if not first:
        await _put_judged(repository, derived)
        await repository.delete_many(*undone)
        return
    results = await repository.create_unless_taken(first, validated=True, then_delete=undone)  # built valid
    created = {resource_id for (_, resource_id), result in zip(first, results, strict=True) if result}
    await _put_judged(repository, [r for r in derived if r["id"] not in created])


async def _put_judged(repository: FhirRepository, derived: list[Resource]) -> None:
    """Store z-scores whose ids may be taken, each judged against what is stored under its id."""
    if not derived:
        return
    stored = await repository.read_many("Observation", [r["id"] for r in derived])
    new = []
    for resource in derived:
        now = stored.get(resource["id"])
        if now is None:
            new.append((resource, resource["id"]))
            continue
        if now.deleted or now.content is None:  # derived once, since undone: derive it again
            await repository.update("Observation", resource["id"], resource)
            continue
        existing = fhir_json.loads_stored(now.content)
        if not is_derived(existing) or same_content(existing, resource):
            continue  # someone else's resource under that id, or nothing new: leave it
        await repository.update("Observation", resource["id"], resource, if_match=now.version_id)
    if new:
        await repository.create_many(new, validated=True)  # built by zscore_observation


def _is_own_derived(now: StoredVersion) -> bool:
    return now.content is not None and is_derived(fhir_json.loads_stored(now.content))
