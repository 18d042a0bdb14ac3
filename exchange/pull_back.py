"""Bringing the clinic's Task updates back into Puente: polled, applied as the clinic, cursor after commit.

Why polling, not a notification from the clinic: it needs nothing of the clinic's server beyond
the FHIR search every server has (`Task?_lastUpdated=gt...`), no endpoint of Puente's open to the
clinic and no second credential, and it cannot lose an update: the cursor (the clinic's newest
`meta.lastUpdated` brought back) is stored, and moved only after the updates up to it are committed.
A process that dies in between polls the same Tasks again, and applying a Task that says what
Puente's already says changes nothing. Each poll looks `OVERLAP` behind the cursor, so an update
the clinic committed late with an earlier timestamp is still seen (the same reasoning as the
README's "Polling that misses nothing").

Each clinic Task that carries Puente's identifier (system `[Puente FHIR base]/Task`, exchange.push)
is applied to the Task it names, as the partner Organization's principal, through the repository
with the exchange's write hooks: the lifecycle rules (exchange.lifecycle) hold exactly as for the
clinic's own PUT, and a completed Task completes its ServiceRequest. What is taken: `status`,
`businessStatus`, `statusReason` and `output` (references in `output` to the clinic's own resources
become absolute URLs on the clinic's server). A clinic that jumps states (requested -> completed) is
walked through the owner's moves in between (accepted, in-progress), one version each. An update the
rules refuse (a Task the CHW cancelled meanwhile) is recorded as an `apply` attempt naming the rule,
and not retried: the clinic's next change is brought back as usual.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import select, update

from exchange.lifecycle import OWNER_MOVES, TRANSITIONS
from exchange.matching import epoch_ms
from exchange.partner_tables import partners
from exchange.partners import Partner
from exchange.push import FHIR_JSON, Attempt, puente_system
from fhir_mappings import fhir_json
from fhir_mappings.outcomes import FhirError
from storage.database import transaction
from storage.repository import FhirRepository

if TYPE_CHECKING:
    from exchange.push import PartnerWorker

log = logging.getLogger("puente.exchange.partners")
FIELDS = ("status", "businessStatus", "statusReason", "output")
OVERLAP = timedelta(seconds=30)
PAGE_SIZE = 100
MAX_PAGES = 50  # per poll; the rest is for the next one (the cursor has moved past what was applied)
PULL_LEASE_MS = 120_000


async def pull_due(worker: PartnerWorker) -> int:
    """Poll one partner whose turn it is (leased, so no two workers poll it at once); 1 if one was polled."""
    claimed = await _claim(worker)
    if claimed is None:
        return 0
    partner, cursor = claimed
    next_pull = epoch_ms() + worker.pull_ms
    try:
        cursor, ok = await pull(worker, partner, cursor)
        if not ok:
            next_pull = epoch_ms() + max(worker.pull_ms, worker.policy.delay_ms(1))
    finally:
        async with transaction(worker.engine, write=True) as connection:
            await connection.execute(update(partners).where(partners.c.id == partner.id, partners.c.pull_lease_owner
                                                            == worker.name)
                                     .values(pull_cursor=cursor, next_pull_at=next_pull, pull_lease_until=None,
                                             pull_lease_owner=None))
    return 1


async def _claim(worker: PartnerWorker) -> tuple[Partner, str | None] | None:
    p = partners
    now = epoch_ms()
    async with transaction(worker.engine, write=False) as connection:
        due = (await connection.execute(select(p.c.id).where(
            p.c.next_pull_at <= now, (p.c.pull_lease_until.is_(None)) | (p.c.pull_lease_until < now))
            .order_by(p.c.next_pull_at).limit(1))).first()
    if due is None:
        return None
    async with transaction(worker.engine, write=True) as connection:
        row = (await connection.execute(
            update(p).where(p.c.id == due.id, p.c.next_pull_at <= now,
                            (p.c.pull_lease_until.is_(None)) | (p.c.pull_lease_until < now))
            .values(pull_lease_until=now + PULL_LEASE_MS, pull_lease_owner=worker.name)
            .returning(*p.c))).first()
    if row is None:  # another worker took it
        return None
    return Partner.from_row(row), row.pull_cursor


async def pull(worker: PartnerWorker, partner: Partner, cursor: str | None) -> tuple[str | None, bool]:
    """Fetch the clinic's Tasks changed since `cursor`, apply each; the new cursor, and whether all went well."""
    params = {"_sort": "_lastUpdated", "_count": str(PAGE_SIZE)}
    since = _parse_instant(cursor)
    if since is not None:
        params["_lastUpdated"] = "gt" + _instant(since - OVERLAP)
    url: str | None = f"{partner.base_url}/Task"
    seen = worker.pulled.setdefault(partner.id, {})
    if since is not None:
        for version in [v for v, stamp in seen.items() if stamp < since - 2 * OVERLAP]:
            del seen[version]
    newest = since
    origin = _origin(partner.base_url)
    for _ in range(MAX_PAGES):
        if url is None:
            break
        tried, response = await worker.call(partner, "GET", url, params=params, headers={"Accept": FHIR_JSON})
        await worker.record(partner.id, tried)
        if response is None or not 200 <= response.status_code < 300:
            return _instant(newest) if newest else cursor, False
        try:
            page = response.json()
            tasks = [e["resource"] for e in page.get("entry") or []
                     if isinstance(e.get("resource"), dict) and e["resource"].get("resourceType") == "Task"]
        except (ValueError, AttributeError, KeyError, TypeError):
            await worker.record(partner.id, [Attempt("pull", response.status_code, "not a search Bundle", 0)])
            return _instant(newest) if newest else cursor, False
        tasks.sort(key=lambda t: _parse_instant((t.get("meta") or {}).get("lastUpdated")) or datetime.min)
        for task in tasks:
            meta = task.get("meta") or {}
            stamp = _parse_instant(meta.get("lastUpdated"))
            version = (str(task.get("id")), str(meta.get("versionId") or meta.get("lastUpdated")))
            if version not in seen:  # seen again in the overlap: judged already (by this worker)
                await apply(worker, partner, task)
                seen[version] = stamp or datetime.now(UTC)
            if stamp is not None and (newest is None or stamp > newest):
                newest = stamp
        url = next((link.get("url") for link in page.get("link") or [] if link.get("relation") == "next"), None)
        if url is not None and _origin(url) != origin:
            log.warning("partner %s: a next link off its server was not followed", partner.name)
            url = None
        params = {}  # the next link carries the query
    return (_instant(newest) if newest else cursor), True


async def apply(worker: PartnerWorker, partner: Partner, clinic_task: dict[str, Any]) -> str:
    """Apply one clinic Task to Puente's: applied | unchanged | not-ours | refused."""
    system = puente_system(worker.puente_base, "Task")
    task_id = next((i.get("value") for i in clinic_task.get("identifier") or []
                    if isinstance(i, dict) and i.get("system") == system and i.get("value")), None)
    if task_id is None:
        return "not-ours"  # a Task the clinic made itself
    wanted = {k: _from_clinic(clinic_task[k], partner, worker.puente_base) for k in FIELDS if k in clinic_task}
    started = time.monotonic()
    try:
        async with transaction(worker.engine, write=True) as connection:
            repository = FhirRepository(connection, partner.principal, subscribers=worker.subscribers)
            try:
                current = await repository.read("Task", task_id)
            except FhirError:
                return "not-ours"  # not Puente's, or no longer the clinic's to see
            if current.content is None:
                return "not-ours"
            task = fhir_json.loads_stored(current.content)
            if all(task.get(k) == v for k, v in wanted.items()):
                return "unchanged"
            version = current.version_id
            before, after = task.get("status"), wanted.get("status", task.get("status"))
            for step in _owner_path(str(before), str(after))[:-1]:
                task = {**task, "status": step}
                version = (await repository.update("Task", task_id, task, if_match=version)).version.version_id
            await repository.update("Task", task_id, {**task, **wanted}, if_match=version)
    except FhirError as exc:
        detail = exc.diagnostics
        await worker.record(partner.id, [Attempt("apply", exc.status, f"Task/{task_id}: {detail}"[:500],
                                                 int((time.monotonic() - started) * 1000))])
        return "refused"
    return "applied"


def _owner_path(before: str, after: str) -> list[str]:
    """The statuses from `before` to `after` through moves the owner clinic may make (shortest first);
    [after] when it is one move (or none), so the rules judge it and name their refusal."""
    if before == after or after in TRANSITIONS.get(before, frozenset()):
        return [after]
    queue: deque[list[str]] = deque([[before]])
    seen = {before}
    while queue:
        path = queue.popleft()
        for status in sorted(TRANSITIONS.get(path[-1], frozenset()) & OWNER_MOVES):
            if status in seen:
                continue
            if status == after:
                return [*path[1:], status]
            seen.add(status)
            queue.append([*path, status])
    return [after]


def _from_clinic(value: Any, partner: Partner, puente_base: str) -> Any:
    """The clinic's references made absolute on its server; those to Puente's resources, local again."""
    if isinstance(value, list):
        return [_from_clinic(v, partner, puente_base) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _from_clinic(v, partner, puente_base) for k, v in value.items()}
    reference = value.get("reference")
    if isinstance(reference, str):
        base = puente_base.rstrip("/") + "/"
        if reference.startswith(base):
            out["reference"] = reference[len(base):]
        elif "://" not in reference and not reference.startswith(("#", "urn:")):
            out["reference"] = f"{partner.base_url}/{reference}"
    return out


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _parse_instant(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo is not None else None


def _instant(stamp: datetime) -> str:
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
