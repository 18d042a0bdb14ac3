"""Pushing referrals to partner clinics: the outbox row in the writing transaction, the Bundle, the worker.

- **Matching** (`PartnerMatcher`, a WriteHook on storage's write-event seam): a write that makes a
  referral *newly* addressed to a partner's Organization (a ServiceRequest whose `performer`, or a
  Task whose `owner`, is `Organization/<id>`; created so, confirmed from draft, or readdressed)
  leaves one row in `exchange_partner_outbox`, in its transaction, with the partner's next event
  number. A Task and the ServiceRequest it is about, written together, make one push. Later changes
  of an already pushed referral are not pushed again (Puente brings the clinic's changes back).
- **The Bundle** (`referral_bundle`): a FHIR `transaction` of conditional creates, read at send time
  through the partner Organization's access rules (what its clinic could pull itself): the Patient
  (`If-None-Exist` on its own identifier, e.g. the DNI, so the clinic's existing record is used),
  what the referral cites (`reasonReference`, `supportingInfo`: the hemoglobin, the z-scores), the
  ServiceRequest and its open Tasks owned by the clinic, each carrying a Puente identifier (system
  `[Puente FHIR base]/[type]`, value the id: together, the resource's URL at Puente) on which it is
  created conditionally. Sending it again creates nothing new. References between them are the
  entries' `urn:uuid:` fullUrls; any other reference becomes Puente's absolute URL.
- **Delivery** (`PartnerWorker`): as exchange.delivery for subscriptions: the oldest pending push of
  each partner is claimed under a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL), sent with a token
  from the clinic's token endpoint (exchange.tokens), retried with exponential backoff for
  `PUENTE_EXCHANGE_RETRY_HOURS`, and every token request and POST is a row of
  `exchange_partner_attempts`. The next push of a partner waits until this one is acknowledged
  (2xx) or given up. The same workers bring the clinic's Task updates back (exchange.pull_back).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from exchange import outbox_claims
from exchange.delivery import Policy
from exchange.matching import epoch_ms
from exchange.partner_tables import partner_attempts, partner_outbox, partners
from exchange.partners import Partner
from exchange.tokens import ClinicAccess, ClinicSession, KeyFileError, Sessions, TokenError, current_key
from fhir_mappings import fhir_json
from fhir_mappings.outcomes import FhirError
from settings import Settings
from storage import search_rows
from storage.database import transaction
from storage.repository import FhirRepository, WriteEvent
from storage.write_events import WriteSubscribers

log = logging.getLogger("puente.exchange.partners")
# Statuses in which a referral is there to be acted on (a draft is not sent; an ended one no more).
OPEN_REQUEST = frozenset({"active", "on-hold"})
OPEN_TASK = frozenset({"requested", "received", "accepted", "ready", "in-progress", "on-hold"})
REFERRAL_TYPES = ("ServiceRequest", "Task")
CITES = ("reasonReference", "supportingInfo")  # what a ServiceRequest (and a Task: reasonReference) cites
FHIR_JSON = "application/fhir+json"


# ---- matching, in the writing transaction ------------------------------------------------------


def local_reference(value: Any) -> tuple[str, str] | None:
    """(type, id) of a reference to a resource at Puente: relative, or absolute on Puente's own base."""
    reference = value.get("reference") if isinstance(value, dict) else None
    if not isinstance(reference, str):
        return None
    base = search_rows.base_url()
    if base and reference.startswith(base.rstrip("/") + "/"):
        reference = reference[len(base.rstrip("/")) + 1:]
    if "://" in reference or reference.startswith(("#", "urn:")):
        return None
    parts = reference.split("/")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1]


def addressed_to(resource: dict[str, Any] | None) -> set[str]:
    """The Organizations ("Organization/ID") a referral is addressed to while it is open."""
    if resource is None:
        return set()
    kind = resource.get("resourceType")
    if kind == "ServiceRequest" and resource.get("status") in OPEN_REQUEST:
        targets = [local_reference(p) for p in resource.get("performer") or []]
    elif kind == "Task" and resource.get("status") in OPEN_TASK:
        targets = [local_reference(resource.get("owner"))]
    else:
        return set()
    return {f"{t[0]}/{t[1]}" for t in targets if t is not None and t[0] == "Organization"}


def _requests_named(task: dict[str, Any]) -> set[str]:
    named = [local_reference(task.get("focus")), *(local_reference(r) for r in task.get("basedOn") or [])]
    return {rid for ref in named if ref is not None and ref[0] == "ServiceRequest" for rid in [ref[1]]}


class PartnerMatcher:
    def quiet_creation(self, resource_type: str, resource_id: str, resource: dict[str, Any]) -> bool:
        """Only a referral addressed to an Organization may be pushed to a partner."""
        return resource_type not in REFERRAL_TYPES or not addressed_to(resource)

    async def __call__(self, repository: FhirRepository, events: Sequence[WriteEvent]) -> None:
        newly: list[tuple[WriteEvent, set[str]]] = []
        for event in events:
            if event.version.resource_type not in REFERRAL_TYPES or event.resource is None:
                continue
            now = addressed_to(event.resource)
            if not now:
                continue
            before = set()
            if event.previous is not None and not event.previous.deleted and event.previous.content:
                before = addressed_to(fhir_json.loads_stored(event.previous.content))
            if now - before:
                newly.append((event, now - before))
        if newly:
            await _enqueue(repository, newly)


async def _enqueue(repository: FhirRepository, newly: list[tuple[WriteEvent, set[str]]]) -> None:
    p = partners
    organizations = sorted({o for _, orgs in newly for o in orgs})
    rows = (await repository.connection.execute(
        select(p.c.id, p.c.organization).where(p.c.organization.in_(organizations)).order_by(p.c.id))).all()
    for row in rows:
        events = [e for e, orgs in newly if row.organization in orgs]
        # A Task pushes its ServiceRequest with it: the request written with it needs no push of its own.
        with_task = {rid for e in events if e.resource and e.version.resource_type == "Task"
                     for rid in _requests_named(e.resource)}
        latest = {(e.version.resource_type, e.version.id): e for e in events
                  if not (e.version.resource_type == "ServiceRequest" and e.version.id in with_task)}
        items = sorted(latest.values(), key=lambda e: (e.version.last_updated, e.version.resource_type, e.version.id))
        last = (await repository.connection.execute(
            update(p).where(p.c.id == row.id).values(next_event=p.c.next_event + len(items))
            .returning(p.c.next_event))).scalar_one()
        first, now = last - len(items) + 1, epoch_ms()
        await repository.connection.execute(insert(partner_outbox), [
            {"partner_id": row.id, "event_number": first + n, "resource_type": e.version.resource_type,
             "resource_id": e.version.id, "version_id": e.version.version_id, "created_at": now,
             "state": "pending", "attempts": 0, "next_attempt_at": now, "lease_until": None, "lease_owner": None,
             "done_at": None}
            for n, e in enumerate(items)
        ])


# ---- the Bundle ----------------------------------------------------------------------------------


def puente_system(puente_base: str, resource_type: str) -> str:
    """The identifier system of Puente's resources of a type: system + '/' + value is the resource's URL."""
    return f"{puente_base.rstrip('/')}/{resource_type}"


async def referral_bundle(
    repository: FhirRepository, partner: Partner, resource_type: str, resource_id: str, puente_base: str
) -> dict[str, Any] | None:
    """The transaction Bundle for one referral, read as the partner's clinic (None: it cannot read
    it any more, or it is no longer addressed to it)."""
    trigger = await _read_one(repository, resource_type, resource_id)
    if trigger is None or partner.organization not in addressed_to(trigger):
        return None
    if resource_type == "Task":
        tasks = [trigger]
        requests = list((await _read(repository, "ServiceRequest", _requests_named(trigger))).values())
    else:
        requests = [trigger]
        found = await repository.referring_to("Task", "focus", "ServiceRequest", [resource_id])
        tasks = [t for t in (_loaded(v) for v in found)
                 if t is not None and partner.organization in addressed_to(t)]
    referral = [*requests, *tasks]
    patients = await _read(repository, "Patient", {
        ref[1] for r in referral for ref in [local_reference(r.get("subject") or r.get("for"))]
        if ref is not None and ref[0] == "Patient"})
    cited_refs: dict[str, set[str]] = {}
    for r in referral:
        for element in CITES:
            for value in r.get(element) or []:
                ref = local_reference(value)
                if ref is not None and ref[0] not in ("Patient", *REFERRAL_TYPES):
                    cited_refs.setdefault(ref[0], set()).add(ref[1])
    cited = [c for kind, ids in sorted(cited_refs.items()) for c in (await _read(repository, kind, ids)).values()]
    ordered = [*patients.values(), *cited, *requests, *tasks]
    full_urls = {(r["resourceType"], r["id"]): _full_url(puente_base, r) for r in ordered}
    entries = [_entry(r, full_urls, puente_base) for r in ordered]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


async def _read_one(repository: FhirRepository, resource_type: str, resource_id: str) -> dict[str, Any] | None:
    try:
        version = await repository.read(resource_type, resource_id)
    except FhirError:  # not found for this clinic, deleted, or beyond its scopes
        return None
    return _loaded(version)


async def _read(repository: FhirRepository, resource_type: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    try:
        found = await repository.read_many(resource_type, wanted)
    except FhirError:
        return {}
    return {rid: r for rid in wanted if rid in found for r in [_loaded(found[rid])] if r is not None}


def _loaded(version: Any) -> dict[str, Any] | None:
    if version.deleted or version.content is None:
        return None
    loaded: dict[str, Any] = fhir_json.loads_stored(version.content)
    return loaded


def _full_url(puente_base: str, resource: dict[str, Any]) -> str:
    url = f"{puente_system(puente_base, resource['resourceType'])}/{resource['id']}"
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, url)}"


def _entry(resource: dict[str, Any], full_urls: dict[tuple[str, str], str], puente_base: str) -> dict[str, Any]:
    kind, rid = resource["resourceType"], resource["id"]
    ours = {"system": puente_system(puente_base, kind), "value": rid}
    sent = _rewrite({k: v for k, v in resource.items() if k not in ("id", "meta")}, full_urls, puente_base)
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k in ("profile", "tag", "security")}
    if meta:
        sent["meta"] = meta
    identifiers = [i for i in sent.get("identifier") or [] if isinstance(i, dict)]
    match = ours
    if kind == "Patient":  # the clinic may know the patient already, by the same national identifier
        match = next((i for i in identifiers if i.get("system") and i.get("value")), ours)
    if ours not in identifiers:
        identifiers.append(ours)
    sent["identifier"] = identifiers
    return {
        "fullUrl": full_urls[(kind, rid)],
        "resource": sent,
        "request": {"method": "POST", "url": kind,
                    "ifNoneExist": urlencode({"identifier": f"{match['system']}|{match['value']}"})},
    }


def _rewrite(value: Any, full_urls: dict[tuple[str, str], str], puente_base: str) -> Any:
    """References to the Bundle's entries become their fullUrls; other references to Puente, absolute."""
    if isinstance(value, list):
        return [_rewrite(v, full_urls, puente_base) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _rewrite(v, full_urls, puente_base) for k, v in value.items()}
    ref = local_reference(value)
    if ref is not None:
        out["reference"] = full_urls.get(ref) or f"{puente_system(puente_base, ref[0])}/{ref[1]}"
    return out


# ---- delivery ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    pk: int
    partner_id: str
    event_number: int
    resource_type: str
    resource_id: str
    attempts: int
    created_at: int


@dataclass(frozen=True)
class Attempt:
    phase: str  # token | push | pull | apply
    status_code: int | None
    error: str | None
    duration_ms: int


class PartnerWorker:
    """Pushes partners' referrals and brings their Task updates back; any number share the work."""

    def __init__(self, engine: AsyncEngine, settings: Settings, *, subscribers: WriteSubscribers | None = None) -> None:
        self.engine = engine
        self.policy = Policy.from_settings(settings)
        self.name = f"partner-{uuid.uuid4().hex[:12]}"
        self.configured_base = settings.public_base_url
        self.pull_ms = int(settings.exchange_pull_seconds * 1000)
        self.sessions = Sessions(timeout=self.policy.timeout_seconds)
        # Per partner, the clinic's Task versions this worker brought back lately (pull_back: the overlap).
        self.pulled: dict[str, dict[tuple[str, str], datetime]] = {}
        if subscribers is None:  # the exchange's own hooks: the lifecycle rules hold for what comes back
            import exchange

            subscribers = exchange.subscribers()
        self.subscribers = subscribers

    async def run(self, stopping: asyncio.Event) -> None:
        from exchange import pull_back

        while not stopping.is_set():
            busy = 0
            try:
                busy = await self.run_once()
                busy += await pull_back.pull_due(self)
            except Exception as exc:  # the database restarting, a pool timeout: wait and go on
                log.warning("partner worker: %s", type(exc).__name__)
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), self.policy.poll_seconds)

    async def run_once(self) -> int:
        if not await self._anything_due():
            return 0
        claimed = await self._claim()
        await asyncio.gather(*(self._deliver_or_record(c) for c in claimed))  # different partners: in parallel
        return len(claimed)

    async def _deliver_or_record(self, event: Claimed) -> None:
        try:
            await self._deliver(event)
        except Exception as exc:  # a fault of ours with this one push: recorded, retried later like any failure
            log.exception("partner push %s/%s failed", event.partner_id, event.event_number)
            await self._finish(event, "pending", [Attempt("push", None, f"internal error: {type(exc).__name__}", 0)])

    async def close(self) -> None:
        await self.sessions.aclose()

    async def _anything_due(self) -> bool:
        return await outbox_claims.anything_due(self.engine, partner_outbox)

    async def _claim(self) -> list[Claimed]:
        o = partner_outbox
        rows = await outbox_claims.claim_heads(self.engine, o, "partner_id", self.name, (
            o.c.pk, o.c.partner_id, o.c.event_number, o.c.resource_type, o.c.resource_id, o.c.attempts,
                   o.c.created_at))
        return [Claimed(**row._mapping) for row in rows]

    @property
    def puente_base(self) -> str:
        """Puente's base as its references are indexed (storage.search_rows, set from PUENTE_BASE_URL
        by the app and by `puente exchange work`): the one matching uses to tell Puente's own
        references, so what is pushed and what is matched name resources alike."""
        return search_rows.base_url() or self.configured_base

    async def partner(self, partner_id: str) -> Partner | None:
        async with transaction(self.engine, write=False) as connection:
            row = (await connection.execute(select(partners).where(partners.c.id == partner_id))).first()
        return None if row is None else Partner.from_row(row)

    async def session_for(self, partner: Partner) -> ClinicSession:
        """The partner's token session; KeyFileError when its key file is unusable now."""
        key = current_key(partner.key_file)
        access = ClinicAccess(partner.token_url, partner.client_id, partner.scope, key)
        return await self.sessions.for_partner(partner.id, access)

    async def _deliver(self, event: Claimed) -> None:
        partner = await self.partner(event.partner_id)
        if partner is None:  # removed meanwhile
            await self._finish(event, "gave-up", [])
            return
        async with transaction(self.engine, write=False) as connection:
            bundle = await referral_bundle(FhirRepository(connection, partner.principal), partner,
                                           event.resource_type, event.resource_id, self.puente_base)
        if bundle is None:
            await self._finish(event, "gave-up", [Attempt(
                "push", None, "no longer addressed to, or readable by, the partner's Organization", 0)])
            return
        body = fhir_json.dumps(bundle)
        headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON,
                   "X-Puente-Partner-Event": str(event.event_number)}
        tried, response = await self.call(partner, "POST", partner.base_url, content=body, headers=headers)
        ok = response is not None and 200 <= response.status_code < 300
        if ok:
            state = "delivered"
        elif epoch_ms() - event.created_at >= self.policy.retry_ms:
            state = "gave-up"
        else:
            state = "pending"
        await self._finish(event, state, tried)

    async def call(
        self, partner: Partner, method: str, url: str, **kwargs: Any
    ) -> tuple[list[Attempt], httpx.Response | None]:
        """One request to the partner with a token (a 401 drops the token: one more try with a new one);
        every token request and every request, as attempts. The response is read; None if none came."""
        phase = "push" if method == "POST" else "pull"
        tried: list[Attempt] = []
        started = time.monotonic()
        try:
            session = await self.session_for(partner)
        except KeyFileError as exc:
            return [Attempt("token", None, str(exc)[:500], 0)], None
        for round_ in (1, 2):
            if not session.has_token:
                started = time.monotonic()
                try:
                    await session.fetch_token()
                except TokenError as exc:
                    tried.append(Attempt("token", exc.status_code, str(exc)[:500], _since(started)))
                    return tried, None
                tried.append(Attempt("token", 200, None, _since(started)))
            started = time.monotonic()
            try:
                response = await session.client.request(method, url, auth=session.client.token_auth, **kwargs)
                await response.aread()
            except httpx.HTTPError as exc:
                tried.append(Attempt(phase, None, type(exc).__name__, _since(started)))
                return tried, None
            ok = 200 <= response.status_code < 300
            tried.append(Attempt(phase, response.status_code, None if ok else _problem(response), _since(started)))
            if response.status_code == 401 and round_ == 1:  # revoked early, or the clinic forgot it
                session.forget_token()
                continue
            return tried, response
        return tried, None  # pragma: no cover (the loop always returns)

    async def record(self, partner_id: str, tried: list[Attempt], *, outbox_pk: int | None = None,
                     event_number: int | None = None, connection: Any = None) -> None:
        """The attempts, and the partner's latest failure (cleared by a success)."""
        if not tried:
            return
        now = epoch_ms()
        rows = [{"partner_id": partner_id, "outbox_pk": outbox_pk, "event_number": event_number,
                 "phase": a.phase, "attempted_at": now, "duration_ms": a.duration_ms, "status_code": a.status_code,
                 "error": a.error, "worker": self.name} for a in tried]
        last = tried[-1]
        problem = None if last.error is None else f"{last.phase}: {last.error}"
        if connection is None:
            async with transaction(self.engine, write=True) as own:
                await self._write_records(own, partner_id, rows, problem)
        else:
            await self._write_records(connection, partner_id, rows, problem)

    @staticmethod
    async def _write_records(connection: Any, partner_id: str, rows: list[dict[str, Any]], problem: str | None) -> None:
        # Always the partner's row before its outbox and attempts (as in _finish), one lock order for all.
        await connection.execute(update(partners).where(partners.c.id == partner_id).values(last_error=problem))
        await connection.execute(insert(partner_attempts), rows)

    async def _finish(self, event: Claimed, state: str, tried: list[Attempt]) -> None:
        o = partner_outbox
        now = epoch_ms()
        attempts = event.attempts + (1 if tried else 0)
        values: dict[str, Any] = {"state": state, "attempts": attempts, "lease_until": None, "lease_owner": None}
        if state == "pending":
            values["next_attempt_at"] = now + self.policy.delay_ms(attempts)
        else:
            values["done_at"] = now
        async with transaction(self.engine, write=True) as connection:
            if tried:  # the partner's row first, then its outbox: the lock order of every partner write
                await connection.execute(select(partners.c.id).where(partners.c.id == event.partner_id)
                                         .with_for_update())
            await connection.execute(update(o).where(o.c.pk == event.pk).values(**values))
            await self.record(event.partner_id, tried, outbox_pk=event.pk, event_number=event.event_number,
                              connection=connection)


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _problem(response: httpx.Response) -> str:
    """HTTP status and the first diagnostics of an OperationOutcome, if the answer was one."""
    text = f"HTTP {response.status_code}"
    try:
        outcome = response.json()
        issue = (outcome.get("issue") or [{}])[0]
        detail = issue.get("diagnostics") or (issue.get("details") or {}).get("text")
        if detail:
            text += f": {detail}"
    except (ValueError, AttributeError, IndexError, TypeError):
        pass
    return text[:500]
