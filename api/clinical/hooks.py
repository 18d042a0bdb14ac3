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
from dataclasses import dataclass

from api.clinical.derived import derived_id, is_derived, same_content, zscore_observation
from api.clinical.evidence import Finding, apply_finding, current
from api.clinical.fhir_in import GROWTH_LOINC, Kind, Measurement, Resource, birth_date, sex
from api.clinical.growth_days import GrowthDay, anchored_indicators, growth_day
from api.clinical.hemoglobin import own_anaemia_class
from api.clinical.lookup import existing_ids, patient_measurements, read_resource
from api.clinical.system import RulesRepositories, serialise_patient
from clinical import AnaemiaClass, Indicator
from fhir_mappings import fhir_json
from storage.repository import FhirRepository, WriteEvent


@dataclass(frozen=True)
class _Change:
    source_id: str
    before: Measurement | None
    after: Measurement | None


class DerivedFacts:
    def __init__(self, rules: RulesRepositories) -> None:
        self._rules = rules

    async def __call__(self, repository: FhirRepository, event: WriteEvent) -> None:
        if event.version.resource_type != "Observation":
            return
        before = None
        if event.previous is not None and event.previous.content is not None and not event.previous.deleted:
            before = Measurement.from_observation(fhir_json.loads(event.previous.content))
        after = Measurement.from_observation(event.resource)
        if before is None and after is None:
            return
        change = _Change(event.version.id, before, after)
        rules = self._rules(repository)
        for patient_id in sorted({m.patient_id for m in (before, after) if m is not None}):
            # Two measurements of one child written at once must see each other (weight-for-length).
            await serialise_patient(rules, patient_id)
        kinds = {m.kind for m in (before, after) if m is not None}
        if Kind.HEMOGLOBIN in kinds:
            await self._hemoglobin(rules, change, event)
        if kinds - {Kind.HEMOGLOBIN}:
            await self._growth(rules, change)

    async def _hemoglobin(self, rules: FhirRepository, change: _Change, event: WriteEvent) -> None:
        reference = f"Observation/{change.source_id}"
        supporting: dict[str, dict[str, dt.date]] = {}
        after = change.after if change.after is not None and change.after.kind is Kind.HEMOGLOBIN else None
        if after is not None and event.resource is not None:
            severe = own_anaemia_class(event.resource) == AnaemiaClass.SEVERE.value
            supporting[after.patient_id] = {reference: after.date} if severe else {}
        for m in (change.before, change.after):
            if m is not None:
                supporting.setdefault(m.patient_id, {})
        for patient_id, shown in supporting.items():
            await apply_finding(rules, Finding("severe-anaemia", patient_id, frozenset({reference}), shown))

    async def _growth(self, rules: FhirRepository, change: _Change) -> None:
        measured = [m for m in (change.before, change.after) if m is not None and m.kind is not Kind.HEMOGLOBIN]
        days = {(m.patient_id, m.date) for m in measured}
        # What the written measurement may have had derived before (a new one has nothing yet).
        stale = {
            f"{change.source_id}:{indicator.value}": (change.source_id, indicator)
            for m in (change.before, change.after) if m is not None and change.before is not None
            for indicator in anchored_indicators(m.kind)
        }
        produced: set[str] = set()
        findings: dict[tuple[str, str], Finding] = {}
        for patient_id, day in sorted(days):
            growth = await self._score_day(rules, change, patient_id, day)
            considered = frozenset({f"Observation/{change.source_id}", *(m.reference for m in growth.considered)})
            for m in growth.considered:
                if m.id == change.source_id and change.before is None:
                    continue
                for indicator in anchored_indicators(m.kind):
                    stale[f"{m.id}:{indicator.value}"] = (m.id, indicator)
            if growth.result is not None:
                for indicator, scored in growth.result.indicators.items():
                    sources = growth.sources(indicator)
                    if scored.zscore is None or not sources:
                        continue
                    derived = zscore_observation(patient_id, growth, indicator, scored, growth.result.ruleset)
                    await _put_derived(rules, derived)
                    produced.add(f"{sources[0].id}:{indicator.value}")
            for finding in _growth_findings(patient_id, growth, considered):
                key = (finding.kind, patient_id)
                previous = findings.get(key)
                if previous is not None:  # two days of one patient (the measurement changed date)
                    finding = Finding(finding.kind, patient_id, previous.considered | finding.considered,
                                      {**previous.supporting, **finding.supporting})
                findings[key] = finding
        candidates = [derived_id(source_id, indicator.value) for key, (source_id, indicator) in stale.items()
                      if key not in produced]
        for resource_id in sorted(await existing_ids(rules, "Observation", candidates)):
            await _delete_derived(rules, resource_id)
        for finding in findings.values():
            await apply_finding(rules, finding)

    async def _score_day(self, rules: FhirRepository, change: _Change, patient_id: str, day: dt.date) -> GrowthDay:
        # The written measurement is taken from the event, not from what search finds.
        same_day = await patient_measurements(rules, patient_id, GROWTH_LOINC, on=day, skip_ids=[change.source_id])
        after = change.after
        if after is not None and after.kind is not Kind.HEMOGLOBIN and (after.patient_id, after.date) == (
                patient_id, day):
            same_day.append(after)
        patient = await read_resource(rules, "Patient", patient_id)
        if patient is None:
            return growth_day(day, same_day, birth_date=None, sex=None)
        return growth_day(day, same_day, birth_date=birth_date(patient), sex=sex(patient))


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


async def _put_derived(repository: FhirRepository, resource: Resource) -> None:
    now = await current(repository, resource["resourceType"], resource["id"])
    if now is not None and now.resource is not None:
        if not is_derived(now.resource) or same_content(now.resource, resource):
            return  # someone else's resource under that id, or nothing new: leave it
        await repository.update(resource["resourceType"], resource["id"], resource, if_match=now.version_id)
        return
    await repository.update(resource["resourceType"], resource["id"], resource)


async def _delete_derived(repository: FhirRepository, resource_id: str) -> None:
    now = await current(repository, "Observation", resource_id)
    if now is not None and now.resource is not None and is_derived(now.resource):
        await repository.delete("Observation", resource_id, if_match=now.version_id)
