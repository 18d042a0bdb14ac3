"""Keeping a patient's Flags and draft referrals in step with the measurements behind them.

One Flag per patient and finding (id `{patient}-{finding}`), listing its evidence in the core
`flag-detail` extension. A write judges some measurements (`considered`); those that show the finding
(`supporting`) are added, the others removed. A Flag left with no evidence is deleted (it was only
ever derived from measurements now corrected or gone); one closed by a person is reopened only by
new evidence, never by a re-post of old evidence.

Draft referrals work the same way on `reasonReference`, but the rules touch a ServiceRequest only
while it is a `draft`: once a CHW or supervisor acts on it, it is theirs. New evidence then opens
the next draft, `{patient}-referral-{finding}-2`, `-3`, ...

Concurrent writers: updates carry If-Match and the whole step is retried when another transaction
got there first.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from fhir_mappings import fhir_json
from fhir_mappings.outcomes import Conflict, Gone, NotFound, PreconditionFailed
from rules.derived import (
    FLAG_KINDS,
    derived_id,
    flag_evidence,
    flag_resource,
    is_derived,
    referral_draft,
    referral_evidence,
    set_flag_evidence,
)
from rules.fhir_in import Resource
from storage.repository import FhirRepository
from storage.versions import fhir_instant, now_ms

log = logging.getLogger("puente.clinical")
ATTEMPTS = 3
MAX_REFERRAL_DRAFTS = 20


@dataclass(frozen=True)
class Finding:
    kind: str  # a key of FLAG_KINDS
    patient_id: str
    considered: frozenset[str]  # Observation references this write judged
    supporting: Mapping[str, dt.date] = field(default_factory=dict)  # those showing the finding -> date


@dataclass(frozen=True)
class Current:
    version_id: int | None
    resource: Resource | None  # None when deleted

    @property
    def live(self) -> bool:
        return self.resource is not None


async def current(repository: FhirRepository, resource_type: str, resource_id: str) -> Current | None:
    """The current version, a deleted marker, or None when the id was never used."""
    try:
        version = await repository.read(resource_type, resource_id)
    except Gone:
        return Current(None, None)
    except NotFound:
        return None
    assert version.content is not None
    return Current(version.version_id, fhir_json.loads_stored(version.content))


async def apply_finding(repository: FhirRepository, finding: Finding) -> None:
    await _retrying(_apply_flag, repository, finding)
    if FLAG_KINDS[finding.kind][1]:
        await _retrying(_apply_referral, repository, finding)


async def _retrying(
    step: Callable[[FhirRepository, Finding], Awaitable[None]], repository: FhirRepository, finding: Finding
) -> None:
    for attempt in range(ATTEMPTS):
        try:
            await step(repository, finding)
            return
        except (PreconditionFailed, Conflict):
            if attempt == ATTEMPTS - 1:
                raise


def _merge(old: list[str], finding: Finding) -> tuple[list[str], list[str]]:
    """(new evidence list, references added): unrelated evidence kept in order, new evidence after it."""
    kept = [r for r in old if r not in finding.considered or r in finding.supporting]
    added = sorted((r for r in finding.supporting if r not in old), key=lambda r: (finding.supporting[r], r))
    return kept + added, added


def _first_date(finding: Finding, references: list[str]) -> dt.date:
    return min(finding.supporting[r] for r in references)


async def _apply_flag(repository: FhirRepository, finding: Finding) -> None:
    flag_id = derived_id(finding.patient_id, finding.kind)
    now = await current(repository, "Flag", flag_id)
    if now is None or not now.live:
        if finding.supporting:
            evidence, _ = _merge([], finding)
            created = flag_resource(flag_id, finding.kind, finding.patient_id, _first_date(finding, evidence), evidence)
            await _put(repository, "Flag", flag_id, created, now)
        return
    flag = now.resource
    assert flag is not None
    if not is_derived(flag):
        log.warning("Flag/%s exists and was not written by the clinical rules; left alone", flag_id)
        return
    old = flag_evidence(flag)
    evidence, added = _merge(old, finding)
    if flag.get("status") == "active":
        if not evidence:
            await repository.delete("Flag", flag_id, if_match=now.version_id)
            return
        if evidence == old:
            return
        updated = dict(flag)
        set_flag_evidence(updated, evidence)
        if added:
            start = (flag.get("period") or {}).get("start")
            first = _first_date(finding, added).isoformat()
            updated["period"] = {**(flag.get("period") or {}), "start": min(start, first) if start else first}
    elif added:  # closed by a person; new evidence reopens it
        updated = flag_resource(flag_id, finding.kind, finding.patient_id, _first_date(finding, added), evidence)
    elif evidence != old:
        updated = dict(flag)
        set_flag_evidence(updated, evidence)
    else:
        return
    await repository.update("Flag", flag_id, updated, if_match=now.version_id)


def referral_slots(patient_id: str, kind: str) -> list[str]:
    """The ids a finding's draft referrals take, in the order they are filled."""
    return [derived_id(patient_id, f"referral-{kind}" if number == 1 else f"referral-{kind}-{number}")
            for number in range(1, MAX_REFERRAL_DRAFTS + 1)]


def draft_slots(patient_id: str, kind: str) -> list[str]:
    """The ids of the draft referrals a finding of `kind` may have (none: a Flag alone)."""
    return referral_slots(patient_id, kind) if FLAG_KINDS[kind][1] else []


def finding_keys(patient_id: str, kind: str) -> list[tuple[str, str]]:
    """(type, id) of everything applying a finding of `kind` may read: its Flag and its draft
    referrals' slots (a read_ahead makes them one statement)."""
    slots = draft_slots(patient_id, kind)
    return [("Flag", derived_id(patient_id, kind)), *(("ServiceRequest", slot) for slot in slots)]


async def _apply_referral(repository: FhirRepository, finding: Finding) -> None:
    slots: list[tuple[str, Current | None]] = []
    for slot_id in referral_slots(finding.patient_id, finding.kind):
        now = await current(repository, "ServiceRequest", slot_id)
        slots.append((slot_id, now))
        if now is None:
            break

    referenced: set[str] = set()
    drafts: list[tuple[str, Current]] = []
    free: list[tuple[str, Current | None]] = []
    for slot_id, now in slots:
        if now is None or not now.live:
            free.append((slot_id, now))
            continue
        request = now.resource
        assert request is not None
        if not is_derived(request):
            continue
        referenced.update(referral_evidence(request))
        if request.get("status") == "draft":
            drafts.append((slot_id, now))

    new = {r: d for r, d in finding.supporting.items() if r not in referenced}
    target = drafts[0][0] if drafts else None
    for slot_id, now in drafts:
        request = now.resource
        assert request is not None
        old = referral_evidence(request)
        evidence = [r for r in old if r not in finding.considered or r in finding.supporting]
        if slot_id == target:
            evidence += sorted(new, key=lambda r: (new[r], r))
        if evidence == old:
            continue
        if not evidence:
            await repository.delete("ServiceRequest", slot_id, if_match=now.version_id)
        else:
            await repository.update(
                "ServiceRequest", slot_id, {**request, "reasonReference": [{"reference": r} for r in evidence]},
                if_match=now.version_id,
            )
    if new and target is None:
        if not free:
            log.warning("Patient/%s has %d referral proposals for %s; no new draft opened",
                        finding.patient_id, MAX_REFERRAL_DRAFTS, finding.kind)
            return
        slot_id, now = free[0]
        evidence = sorted(new, key=lambda r: (new[r], r))
        request = referral_draft(slot_id, finding.kind, finding.patient_id, fhir_instant(now_ms()), evidence)
        await _put(repository, "ServiceRequest", slot_id, request, now)


async def _put(
    repository: FhirRepository, resource_type: str, resource_id: str, resource: Resource, now: Current | None
) -> None:
    if now is None:
        # Conflict if someone else just did; built by flag_resource / referral_draft
        await repository.create(resource, resource_id=resource_id, validated=True)
    else:
        await repository.update(resource_type, resource_id, resource)  # re-create after a deletion
