"""FhirRepository: every FHIR interaction on stored resources, within one database transaction.

The repository knows nothing of HTTP. Each write stores the new current version, its history row
and its search-index rows together, then runs the write hooks (derived clinical facts, outbound
events) in the same transaction, so a request either leaves all of it or none of it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from auth.principal import Principal
from fhir_mappings import fhir_json, json_patch
from fhir_mappings.outcomes import Conflict, Gone, Invalid, Issue, NotFound, PreconditionFailed
from fhir_mappings.search import SearchQuery
from fhir_mappings.search.registry import registry
from fhir_mappings.validation import validate_resource
from storage import access, clock, current_reads, grants, version_writes, write_memo
from storage import search as search_engine
from storage.current_reads import version_from_row
from storage.database import key_lookup
from storage.driver_sql import DriverStatement, fetch, plan_generically, reads_before_begin
from storage.search import SearchPage
from storage.tables import resource_history, resources, search_reference
from storage.version_writes import Authorship
from storage.versions import StoredVersion, after, now_ms
from storage.write_events import NO_SUBSCRIBERS, WriteEvent, WriteSubscribers, quiet_conditions

# unnest WITH ORDINALITY keeps the array's (sorted) order; the lock runs once per row. Two int4 keys,
# the first a class of Puente's own: the single-bigint key space is storage.clock's write leases.
LOCK_CLASS = 0x5043
_ADVISORY_LOCKS = DriverStatement.from_named(
    "SELECT pg_advisory_xact_lock(:lock_class, k) FROM unnest(CAST(:ids AS integer[])) WITH ORDINALITY AS t(k, n)"
    " ORDER BY n"
)

QueryPairs = Sequence[tuple[str, str]]


def lock_id(key: str) -> int:
    """The int4 under LOCK_CLASS that stands for `key`: a 32-bit digest, so two keys that share one
    only take turns, which is harmless."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big", signed=True)


@dataclass(frozen=True)
class WriteResult:
    version: StoredVersion
    created: bool  # a new resource (201) rather than a new version of an existing one (200)
    changed: bool = True  # False when a conditional create found its match


class Deletions(NamedTuple):
    """Resources of one type to delete where they exist, are live and `deletable` accepts their
    current version (judged under the row lock, as delete_many judges)."""

    resource_type: str
    ids: Sequence[str]
    deletable: Callable[[StoredVersion], bool]


@dataclass
class HistoryPage:
    versions: list[StoredVersion]
    next_cursor: int | None
    total: int | None
    watermark: datetime  # storage.clock: the versions are every one stamped until then


class FhirRepository:
    def __init__(
        self,
        connection: AsyncConnection,
        principal: Principal,
        *,
        subscribers: WriteSubscribers = NO_SUBSCRIBERS,
    ) -> None:
        self.connection = connection
        self.principal = principal
        self.subscribers = subscribers
        self._dialect = connection.dialect.name
        self._by = Authorship(principal.author, principal.client_id, principal.user)
        self._deferred: list[WriteEvent] | None = None
        # (type, id) this transaction is about to write for its caller (a transaction Bundle's own
        # entries): references to them are the caller's own, not a widening of what it may see.
        self._pending: set[tuple[str, str]] = set()
        # Resources of the batch being created, readable before their insert (see _insert_new_many);
        # shared with the repositories made by with_principal, which the enrichers read through.
        self._staged: dict[tuple[str, str], dict[str, Any]] = {}
        # Current versions already read in this transaction, by (type, id) and reader (visibility is
        # the reader's): the clinical rules read a visit's Patient for the hemoglobin's interpretation
        # and again to score the growth day. Every write through this repository evicts its key.
        self._reads: dict[tuple[str, str], dict[Principal, StoredVersion | None]] = {}
        # (pk, current version) of rows this transaction has row-locked and not written since, for
        # callers who see every resource of the type (read_ahead with lock=True), None for a key
        # found missing: a write of one of them needs no locked read of its own. Shared like
        # _reads; emptied with it.
        self._locked: dict[tuple[str, str], tuple[int, StoredVersion] | None] = {}
        # Set by a caller whose transaction is one single create and nothing after it but its
        # record (the create interaction): a create whose write subscribers write nothing may then
        # commit by its own statement on PostgreSQL (_insert_new_many), with the record built by
        # `record_with_create` from its (type, id) (its AuditEvent) stored by the same statement;
        # `recorded_with_create` says when it was, and nothing else is to store it.
        self.create_is_whole_transaction = False
        self.record_with_create: Callable[[str, str], dict[str, Any]] | None = None
        self.recorded_with_create = False

    # ---- reads -------------------------------------------------------------------------------

    async def read(self, resource_type: str, resource_id: str) -> StoredVersion:
        access.require(self.principal, resource_type, "r")
        staged = self._staged.get((resource_type, resource_id))
        if staged is not None:
            return StoredVersion(resource_type, resource_id, 1, now_ms(), False, fhir_json.dumps(staged).decode())
        version = (await self._current_versions(resource_type, [resource_id])).get(resource_id)
        if version is None:
            raise NotFound(f"{resource_type}/{resource_id} is not known")
        if version.deleted:
            raise Gone(
                f"{resource_type}/{resource_id} was deleted",
                headers={"ETag": version.etag, "Last-Modified": version.last_modified_http},
            )
        return version

    async def read_many(self, resource_type: str, resource_ids: Sequence[str]) -> dict[str, StoredVersion]:
        """The current versions (deletions included) of those of `resource_ids` that exist and are visible."""
        access.require(self.principal, resource_type, "r")
        return await self._current_versions(resource_type, resource_ids)

    async def _current_versions(self, resource_type: str, resource_ids: Sequence[str]) -> dict[str, StoredVersion]:
        """The visible current versions (deletions included) of those ids, each read once per transaction."""
        found: dict[str, StoredVersion] = {}
        missing = []
        for resource_id in sorted(set(resource_ids)):
            readers = self._reads.get((resource_type, resource_id), {})
            if self.principal in readers:
                known = readers[self.principal]
                if known is not None:
                    found[resource_id] = known
            else:
                missing.append(resource_id)
        if missing:
            visibility = access.visible(self.principal, resource_type, resources, deleted_too=True, each=True)
            read = current_reads.BY_ONE_ID if len(missing) == 1 else current_reads.BY_IDS
            async with key_lookup(self.connection) if len(missing) == 1 else nullcontext():
                keys = {"resource_type": resource_type, "ids": missing, "id": missing[0]}
                versions = await current_reads.select_current(self.connection, read, visibility, keys)
            by_id = {version.id: version for version in versions}
            for resource_id in missing:
                self._reads.setdefault((resource_type, resource_id), {})[self.principal] = by_id.get(resource_id)
            found.update(by_id)
        return found

    async def read_ahead(self, keys: Iterable[tuple[str, str]], *, lock: bool = False) -> None:
        """Read the current versions of these (type, id), of any types, in one statement into what
        this transaction remembers, for the reads of them that follow (read_many) to find there.
        `lock`: row-locked too, so that updating or deleting one of them later in the transaction
        needs no locked read first (PostgreSQL; SQLite's writer holds the database's lock). A row
        that is not there cannot be locked: a key found missing is taken as missing by those
        writes, which suits keys only this transaction's holder of a wider lock creates (the
        rules' derived resources, under the child's lock). A caller that sees only some of a
        type's resources reads type by type instead, unlocked."""
        wanted = set(keys)
        if lock:
            missing = sorted(key for key in wanted if key not in self._locked)
        else:
            missing = sorted(key for key in wanted if self.principal not in self._reads.get(key, {}))
        if not missing:
            return
        types = sorted({resource_type for resource_type, _ in missing})
        if not self._sees_every(types):
            for resource_type in types:
                await self._current_versions(resource_type, [i for t, i in missing if t == resource_type])
            return
        params = {"keys": missing, "types": [t for t, _ in missing], "ids": [i for _, i in missing]}
        read = current_reads.LOCKED_BY_KEYS if lock else current_reads.BY_KEYS
        found = {(v.resource_type, v.id): (pk, v)
                 for pk, v in await current_reads.select_current_keyed(self.connection, read, [], params)}
        self._remember(missing, found, lock=lock)

    def _sees_every(self, types: Iterable[str]) -> bool:
        """Whether the caller may read these types (refused otherwise) and sees every resource of
        them, deleted ones too: then one statement may read and row-lock them, whatever their ids."""
        types = sorted(set(types))
        for resource_type in types:
            access.require(self.principal, resource_type, "r")
        return not any(access.visible(self.principal, t, resources, deleted_too=True) for t in types)

    def _remember(
        self, keys: Iterable[tuple[str, str]], found: dict[tuple[str, str], tuple[int, StoredVersion]], *, lock: bool
    ) -> None:
        """What a read of `keys` found (pk and version by key; a key not there is missing), for the
        reads that follow; with `lock`, the rows are row-locked too (read_ahead)."""
        for key in keys:
            pk_version = found.get(key)
            self._reads.setdefault(key, {})[self.principal] = None if pk_version is None else pk_version[1]
            if lock:
                self._locked[key] = pk_version

    def _forget(self, keys: Iterable[tuple[str, str]]) -> None:
        for key in keys:
            self._reads.pop(key, None)
            self._locked.pop(key, None)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A nested transaction; when it rolls back, so does what this repository (and the write
        subscribers' storage.write_memo) remembers of it.

        The write lease too: a lease first taken inside it is released with it (PostgreSQL releases a
        rolled-back subtransaction's locks), so the next stamp must take it again."""
        leased = clock.is_open(self.connection)
        try:
            async with self.connection.begin_nested():
                yield
        except BaseException:
            self._reads.clear()  # shared with with_principal's repositories: the same dicts
            self._locked.clear()  # the row locks taken inside it are released with it
            write_memo.forget(self.connection)
            if not leased:
                clock.close_write(self.connection)
            raise

    async def vread(self, resource_type: str, resource_id: str, version_id: str) -> StoredVersion:
        access.require(self.principal, resource_type, "r")
        if not (version_id.isascii() and version_id.isdigit() and len(version_id) < 10):  # '¹' is a digit
            raise NotFound(f"{resource_type}/{resource_id} has no version '{version_id}'")
        row = (
            await self.connection.execute(
                select(resource_history).where(
                    resource_history.c.resource_type == resource_type,
                    resource_history.c.id == resource_id,
                    resource_history.c.version_id == int(version_id),
                    *access.visible(self.principal, resource_type, resource_history, deleted_too=True, each=True),
                )
            )
        ).first()
        if row is None:
            raise NotFound(f"{resource_type}/{resource_id} has no version {version_id}")
        version = version_from_row(row)
        if version.deleted:
            raise Gone(f"{resource_type}/{resource_id} version {version_id} is a deletion")
        return version

    async def exists(self, resource_type: str, resource_id: str) -> bool:
        row = (
            await self.connection.execute(
                select(resources.c.deleted).where(
                    resources.c.resource_type == resource_type,
                    resources.c.id == resource_id,
                    *access.visible(self.principal, resource_type, resources, each=True),
                )
            )
        ).first()
        return row is not None and not row.deleted

    async def search_matches(self, resource_type: str, query: QueryPairs) -> list[tuple[int, str]]:
        """(pk, id) of the current resources matching a search query."""
        return await search_engine.find_matches(self.connection, self.principal, resource_type, query)

    async def referring_to(
        self,
        resource_type: str,
        param: str,
        target_type: str,
        target_ids: Sequence[str],
        *,
        codes: Sequence[tuple[str, str]] = (),
        dated: tuple[str, datetime, datetime] | None = None,
    ) -> list[StoredVersion]:
        """Current `resource_type` resources whose reference parameter `param` points at one of
        `target_ids` (of `target_type`) and, if `codes` are given, whose `code` parameter has one of
        those (system, code) pairs: `Observation?subject=Patient/1,Patient/2&code=...`, read in one
        statement, oldest first. `dated` (a date parameter, from, before) keeps those with a value of
        that parameter overlapping [from, before).

        The clinical rules ask this of every measurement they judge; built here directly it costs a
        tenth of the general search path (parsing the query, composing its clauses).
        """
        access.require(self.principal, resource_type, "r")
        if not target_ids:
            return []
        conditions = access.visible(self.principal, resource_type, resources)
        ids = sorted(set(target_ids))
        params: dict[str, Any] = {"resource_type": resource_type, "param": param, "target_type": target_type,
                                  "target_ids": ids, "target_id": ids[0]}
        if dated is not None:
            params["date_param"], params["date_from"], params["date_before"] = dated
        for i, (system, code) in enumerate(codes):
            params[f"code_system{i}"], params[f"code{i}"] = system, code
        read = current_reads.referring(len(ids) == 1, dated is not None, len(codes))
        return await current_reads.select_current(self.connection, read, conditions, params)

    async def greatest_by_token(
        self, resource_type: str, param: str, keys: Sequence[str], *, per_key: int,
        lock_ahead: Sequence[tuple[str, str]] = (), lock_suffixed: Sequence[str] = (),
    ) -> list[StoredVersion]:
        """Current live `resource_type` resources whose token `param` has one of the codes `keys`:
        for each key, the `per_key` with the greatest `system`, in one statement (oldest first).
        Parameters whose `system` is an order key (rules.measurement_keys) make this "the latest
        few of each kind", read through an index range however many rows share the key.

        `lock_ahead`, `lock_suffixed`: the (type, id) its caller is to read_ahead locked next, and
        the suffixes of ids named after the resources found (`{id}-{suffix}`, of `resource_type`,
        where they fit 64 characters). On PostgreSQL, for a caller who sees all of those types, the
        same statement reads and row-locks them (current_reads.greatest_locking_ahead), so that the
        caller's read_ahead finds them locked already; elsewhere that read_ahead reads them."""
        access.require(self.principal, resource_type, "r")
        if not keys:
            return []
        conditions = access.visible(self.principal, resource_type, resources)
        params: dict[str, Any] = {"resource_type": resource_type, "param": param}
        params |= {f"key{i}": key for i, key in enumerate(keys)}
        if ((lock_ahead or lock_suffixed) and self._dialect == "postgresql" and not conditions
                and self._sees_every({resource_type, *(t for t, _ in lock_ahead)})):
            return await self._greatest_locking_ahead(params, len(keys), per_key, lock_ahead, lock_suffixed)
        read = current_reads.greatest_by_token(len(keys), per_key)
        return await current_reads.select_current(self.connection, read, conditions, params)

    async def _greatest_locking_ahead(
        self, params: dict[str, Any], keys: int, per_key: int, lock_ahead: Sequence[tuple[str, str]],
        suffixes: Sequence[str],
    ) -> list[StoredVersion]:
        """greatest_by_token's answer, the rows it locked ahead remembered as read_ahead(lock=True)
        remembers them (a key found missing too)."""
        pairs = sorted(set(lock_ahead))
        params |= {"lock_types": [t for t, _ in pairs], "lock_ids": [i for _, i in pairs], "suffixes": list(suffixes)}
        records = await fetch(self.connection, current_reads.greatest_locking_ahead(keys, per_key), params)
        picked = [current_reads.version_from_record(r)
                  for r in sorted((r for r in records if not r["locked"]), key=lambda r: r["pk"])]
        found = {(r["resource_type"], r["id"]): (r["pk"], current_reads.version_from_record(r))
                 for r in records if r["locked"]}
        resource_type = params["resource_type"]
        asked = {*pairs, *((resource_type, f"{v.id}-{suffix}") for v in picked for suffix in suffixes
                           if len(v.id) + 1 + len(suffix) <= 64)}  # the statement's own rule
        self._remember(asked, found, lock=True)
        return picked

    async def search(self, query: SearchQuery, *, count: int, cursor: str | None = None) -> SearchPage:
        """One page of a type-level search (scope "s" required; only visible resources, includes too)."""
        return await search_engine.search(self.connection, self.principal, query, count=count, cursor=cursor)

    async def single_match(self, resource_type: str, query: QueryPairs, *, what: str) -> str | None:
        """The id of the one current resource the criteria of a conditional interaction match, or None.

        Every conditional interaction resolves here (create, update and delete, over HTTP or in a
        Bundle, and conditional references): several matches are a 412 naming `what` ("If-None-Exist",
        "The conditional update", ...). The criteria's lock is held until the transaction ends, so
        parallel retries of one upload find each other's resource instead of creating two."""
        await self._serialise_on(resource_type, query)
        matches = await self.search_matches(resource_type, query)
        if len(matches) > 1:
            raise PreconditionFailed(
                f"{what} matched {len(matches)} {resource_type} resources; the criteria must select at most one"
            )
        return matches[0][1] if matches else None

    # ---- writes ------------------------------------------------------------------------------

    async def create(
        self, resource: dict[str, Any], *, resource_id: str | None = None, validated: bool = False
    ) -> WriteResult:
        """`validated`: the resource is known to be valid (built by the server's own rules, whose
        output the tests validate), so the second validation is skipped."""
        resource_type = resource["resourceType"] if validated else validate_resource(resource)
        access.require(self.principal, resource_type, "c")
        new_id = resource_id or str(uuid.uuid4())
        inserted = await self._insert_new(new_id, resource, method="POST")
        if inserted is None:  # only possible with a client-chosen id
            raise Conflict(f"{resource_type}/{new_id} already exists")
        return inserted

    async def create_many(
        self, items: Sequence[tuple[dict[str, Any], str]], *, validated: bool = False
    ) -> list[WriteResult]:
        """Create resources with the ids given (chosen by the server, e.g. for a Bundle's POST entries)
        in as few statements as the database allows; Conflict if one of the ids is taken.

        `validated`: the caller has already validated every resource (a Bundle does, to name the entry).
        """
        written = await self.create_unless_taken(items, validated=validated)
        taken = [f"{resource['resourceType']}/{resource_id}"
                 for (resource, resource_id), w in zip(items, written, strict=True) if w is None]
        if taken:
            raise Conflict(f"{', '.join(taken)} already exist(s)")
        return [w for w in written if w is not None]

    async def create_unless_taken(
        self,
        items: Sequence[tuple[dict[str, Any], str]],
        *,
        validated: bool = False,
        then_delete: Deletions | None = None,
    ) -> list[WriteResult | None]:
        """Create the resources whose ids are free, in one statement on PostgreSQL; None for each id
        already taken (its resource is left as it is).

        `then_delete`: what delete_many would delete, judged first and recorded after the new
        resources by the same statement (the rules' new z-scores and those they undo, one round
        trip fewer while a child's lock is held)."""
        for resource, _ in items:
            resource_type = resource["resourceType"] if validated else validate_resource(resource)
            access.require(self.principal, resource_type, "c")
        return await self._insert_new_many(items, method="POST", then_delete=then_delete)

    async def conditional_create(self, resource: dict[str, Any], if_none_exist: QueryPairs) -> WriteResult:
        resource_type = validate_resource(resource)
        match_id = await self.single_match(resource_type, if_none_exist, what="If-None-Exist")
        if match_id is not None:
            return WriteResult(await self.read(resource_type, match_id), created=False, changed=False)
        return await self.create(resource)

    async def update(
        self,
        resource_type: str,
        resource_id: str,
        resource: dict[str, Any],
        *,
        if_match: int | None = None,
        method: str = "PUT",
    ) -> WriteResult:
        validate_resource(resource, expected_type=resource_type)
        body_id = resource.get("id")
        if body_id is None:
            raise Invalid("An update must carry the resource's id", issues=[_id_issue(resource_type)])
        if body_id != resource_id:
            raise Invalid(
                f"The body's id '{body_id}' does not match the URL's id '{resource_id}'",
                issues=[_id_issue(resource_type)],
            )
        locked = await self._current_for_update(resource_type, resource_id)
        if locked is None:
            if if_match is not None:
                raise PreconditionFailed(f"{resource_type}/{resource_id} does not exist (If-Match given)")
            created = await self._create_with_id(resource_type, resource_id, resource, method=method)
            if created is not None:
                return created
            # Someone created it between our look and our insert: it is now an update.
            locked = await self._current_for_update(resource_type, resource_id)
            if locked is None:  # it exists, but not for this caller: answered as if absent
                raise self._not_creatable(resource_type, resource_id)
        _check_if_match(locked[1], if_match)
        return await self._write_version(locked, resource, method=method)

    async def _create_with_id(
        self, resource_type: str, resource_id: str, resource: dict[str, Any], *, method: str
    ) -> WriteResult | None:
        """Update-as-create under a client-chosen id; None when the id turned out to be taken.

        A caller who may not see everything creates only under a UUID (FHIR's advice for
        client-assigned ids, and what the Android FHIR SDK sends): a short id such as
        "cs-la-esperanza" is the programme's to give, and refusing every other id the same way,
        taken or not, tells the caller nothing about resources it cannot see."""
        if not self.principal.is_admin and not _is_uuid(resource_id):
            raise self._not_creatable(resource_type, resource_id)
        created = await self._insert_new(resource_id, resource, method=method)
        if created is None and not self.principal.is_admin:
            raise self._not_creatable(resource_type, resource_id)
        return created

    @staticmethod
    def _not_creatable(resource_type: str, resource_id: str) -> NotFound:
        """The one answer to a write on an id the caller cannot see, whether it exists or not."""
        return NotFound(
            f"{resource_type}/{resource_id} is not known to this client "
            "(a new resource may be created with PUT under a new UUID id)"
        )

    async def conditional_update(
        self, resource_type: str, query: QueryPairs, resource: dict[str, Any], *, if_match: int | None = None
    ) -> WriteResult:
        validate_resource(resource, expected_type=resource_type)
        match_id = await self.single_match(resource_type, query, what="The conditional update")
        body_id = resource.get("id")
        if match_id is None:
            if if_match is not None:
                raise PreconditionFailed("No resource matches the conditional update (If-Match given)")
            if body_id is None:
                created = await self._insert_new(str(uuid.uuid4()), resource, method="PUT")
                assert created is not None  # a fresh uuid4
                return created
            if await self._current_for_update(resource_type, body_id) is not None:
                raise Conflict(f"{resource_type}/{body_id} exists but does not match the update's criteria")
            created = await self._create_with_id(resource_type, body_id, resource, method="PUT")
            if created is None:
                raise Conflict(f"{resource_type}/{body_id} already exists")
            return created
        if body_id is not None and body_id != match_id:
            raise Invalid(
                f"The body's id '{body_id}' differs from the matching resource's id '{match_id}'",
                issues=[_id_issue(resource_type)],
            )
        return await self.update(resource_type, match_id, {**resource, "id": match_id}, if_match=if_match)

    async def patch(
        self, resource_type: str, resource_id: str, operations: Any, *, if_match: int | None = None
    ) -> WriteResult:
        access.require(self.principal, resource_type, "u")
        locked = await self._current_for_update(resource_type, resource_id)
        if locked is None:
            raise NotFound(f"{resource_type}/{resource_id} is not known")
        current = locked[1]
        if current.deleted:
            raise Gone(f"{resource_type}/{resource_id} was deleted")
        _check_if_match(current, if_match)
        assert current.content is not None
        patched = json_patch.apply(fhir_json.loads_stored(current.content), operations)  # within limits
        if not isinstance(patched, dict) or patched.get("id") != resource_id:
            raise Invalid("A patch may not change the resource's id or type")
        if patched.get("resourceType") != resource_type:
            raise Invalid("A patch may not change the resource's type")
        validate_resource(patched, expected_type=resource_type)
        return await self._write_version(locked, patched, method="PATCH")

    async def delete(
        self, resource_type: str, resource_id: str, *, if_match: int | None = None
    ) -> StoredVersion | None:
        """Delete (a new, empty version). Deleting what is missing or already deleted changes nothing."""
        access.require(self.principal, resource_type, "d")
        locked = await self._current_for_update(resource_type, resource_id)
        if locked is None or locked[1].deleted:
            if if_match is not None and locked is None:
                raise PreconditionFailed(f"{resource_type}/{resource_id} does not exist (If-Match given)")
            return None
        _check_if_match(locked[1], if_match)
        return (await self._record_deletions([locked]))[0]

    async def delete_many(
        self,
        resource_type: str,
        resource_ids: Iterable[str],
        deletable: Callable[[StoredVersion], bool] = lambda _: True,
    ) -> list[StoredVersion]:
        """Delete those of several resources of one type that exist, are not deleted already and
        that `deletable` accepts, judged on their current versions under the row lock (a version
        committed since the caller last looked is the one judged): one statement locks and reads
        them, one records the deletions (PostgreSQL) whatever their number. The rules undo derived
        z-scores this way when a day is judged again.
        """
        doomed = await self._judge_deletions(resource_type, resource_ids, deletable)
        return await self._record_deletions(doomed) if doomed else []

    async def _judge_deletions(
        self, resource_type: str, resource_ids: Iterable[str], deletable: Callable[[StoredVersion], bool]
    ) -> list[tuple[int, StoredVersion]]:
        """(pk, current version) of those of the resources delete_many would delete, row-locked."""
        access.require(self.principal, resource_type, "d")
        wanted = sorted(set(resource_ids))
        if not wanted:
            return []
        visibility = access.visible(self.principal, resource_type, resources, deleted_too=True, each=True)
        held = {} if visibility else {i: self._locked[(resource_type, i)]
                                      for i in wanted if (resource_type, i) in self._locked}
        self._forget((resource_type, resource_id) for resource_id in wanted)
        locked = [pk_version for pk_version in held.values() if pk_version is not None]
        unlocked = [i for i in wanted if i not in held]
        if unlocked:
            params = {"resource_type": resource_type, "ids": unlocked}
            locked += await current_reads.select_current_keyed(
                self.connection, current_reads.LOCKED_BY_IDS, visibility, params)
        locked.sort(key=lambda pk_version: pk_version[1].id)
        return [(pk, now) for pk, now in locked if not now.deleted and deletable(now)]

    async def _record_deletions(self, locked: Sequence[tuple[int, StoredVersion]]) -> list[StoredVersion]:
        """A deletion version for each (pk, current version), already locked and checked: the current
        rows emptied, history and index rows (one statement on PostgreSQL), then the hooks."""
        deletions = self._deletion_versions(locked, await clock.write_clock(self.connection))
        await version_writes.store_many(self.connection, [write for write, _ in deletions], self._by)
        return await self._deletions_stored(deletions)

    async def _deletions_stored(
        self, deletions: Sequence[tuple[version_writes.VersionWrite, StoredVersion]]
    ) -> list[StoredVersion]:
        """Run the hooks on deletions already stored (with the version each ended); their versions."""
        await self._run_hooks(*(WriteEvent(write.version, None, now) for write, now in deletions))
        return [write.version for write, _ in deletions]

    def _deletion_versions(
        self, locked: Sequence[tuple[int, StoredVersion]], write_clock: clock.WriteClock
    ) -> list[tuple[version_writes.VersionWrite, StoredVersion]]:
        """The deletion to record for each (pk, current version), with the version it ends."""
        for resource_type in {now.resource_type for _, now in locked}:
            access.require(self.principal, resource_type, "d")
        self._forget((now.resource_type, now.id) for _, now in locked)
        return [
            (version_writes.VersionWrite(
                pk, StoredVersion(now.resource_type, now.id, now.version_id + 1,
                                  after(now.last_updated, write_clock.stamp()), True, None, method="DELETE"),
                None, fresh=False), now)
            for pk, now in locked
        ]

    async def conditional_delete(self, resource_type: str, query: QueryPairs) -> list[StoredVersion]:
        match_id = await self.single_match(resource_type, query, what="The conditional delete")
        deleted = None if match_id is None else await self.delete(resource_type, match_id)
        return [] if deleted is None else [deleted]

    # ---- history -----------------------------------------------------------------------------

    async def history(
        self,
        resource_type: str | None = None,
        resource_id: str | None = None,
        *,
        since: datetime | None = None,
        at: datetime | None = None,
        count: int = 50,
        cursor: int | None = None,
        with_total: bool = True,
        watermark: datetime | None = None,
    ) -> HistoryPage:
        """Versions newest first, keyset-paged by `cursor`. Every page of one history answers as of
        the first page's `watermark` (storage.clock), which `_since` of the next poll can take.

        System level (no `resource_type`) answers what the caller may see of every type it may read,
        deletions included: one call syncs a CHW's app or a clinic."""
        h = resource_history
        conditions: list[Any] = []
        if resource_type is not None:
            access.require(self.principal, resource_type, "r")
            conditions.append(h.c.resource_type == resource_type)
            conditions.extend(access.visible(self.principal, resource_type, h, deleted_too=True,
                                              each=resource_id is not None))
        elif not self.principal.is_admin or self.principal.scopes:
            readable = [t for t in registry().resource_types if access.allowed(self.principal, t, "r")]
            conditions.append(access.visible_any(self.principal, h, readable))
        limit = watermark or await clock.watermark(self.connection)
        conditions.append(h.c.last_updated <= limit)
        # Answer at least `since`: a watermark that came out earlier this time (a write just opened)
        # must not make the next `_since` poll repeat what this one's `_since` left out.
        watermark = max(limit, since) if watermark is None and since is not None else limit
        if resource_id is not None:
            conditions.append(h.c.id == resource_id)
        if since is not None:
            conditions.append(h.c.last_updated >= since)
        if at is not None:
            later = resource_history.alias("later")
            conditions.append(h.c.last_updated <= at)
            conditions.append(
                ~select(later.c.pk)
                .where(
                    later.c.resource_pk == h.c.resource_pk,
                    later.c.version_id > h.c.version_id,
                    later.c.last_updated <= at,
                )
                .exists()
            )
        total = None
        if with_total:
            total = (await self.connection.execute(select(func.count()).select_from(h).where(*conditions))).scalar_one()
        if cursor is not None:
            conditions.append(h.c.pk < cursor)
        rows = (
            await self.connection.execute(select(h).where(*conditions).order_by(h.c.pk.desc()).limit(count + 1))
        ).all()
        versions = [version_from_row(r) for r in rows[:count]]
        next_cursor = rows[count - 1].pk if len(rows) > count else None
        return HistoryPage(versions, next_cursor, total, watermark)

    # ---- internals ---------------------------------------------------------------------------

    async def _insert_new(
        self, resource_id: str, resource: dict[str, Any], *, method: str
    ) -> WriteResult | None:
        """Store a new resource under `resource_id`; None when that id is taken."""
        return (await self._insert_new_many([(resource, resource_id)], method=method))[0]

    async def _insert_new_many(
        self, items: Sequence[tuple[dict[str, Any], str]], *, method: str, then_delete: Deletions | None = None
    ) -> list[WriteResult | None]:
        """Store new (validated) resources under the ids given, in one statement on PostgreSQL.

        Each result is None where the id was taken; the hooks run for those stored (then for the
        deletions of `then_delete`, recorded by the same statement).
        """
        for resource, _ in items:
            access.require(self.principal, resource["resourceType"], "c")
        doomed = [] if then_delete is None else await self._judge_deletions(*then_delete)
        leased = len(items) == 1 and version_writes.leases_in_statement(self.connection)
        if leased:
            plan_generically(self.connection)  # the leased insert below may follow reads of its own
        # Whether the create may commit alone: its enrichers' reads and reference checks then go
        # before any BEGIN.
        alone = leased and self.create_is_whole_transaction and not doomed and self._deferred is None
        # An enricher may read another resource of the same batch (a hemoglobin reads the Patient and
        # the Encounter created with it): it finds it staged, so the batch stays one statement.
        self._staged.update(((resource["resourceType"], resource_id), resource) for resource, resource_id in items)
        with reads_before_begin(self.connection) if alone else nullcontext():
            try:
                for resource, _ in items:
                    for enrich in self.subscribers.enrichers:
                        await enrich(self, resource)
            finally:
                self._staged.clear()
            if not self.principal.is_admin:  # a restricted caller's reference checks only read too
                batch = {(resource["resourceType"], resource_id) for resource, resource_id in items}
                for resource, _ in items:
                    await self._check_references(resource, previous_pk=None, batch=batch)
        self._forget((resource["resourceType"], resource_id) for resource, resource_id in items)
        if leased:  # (enrichers and reference checks only read: nothing has opened the clock since)
            # The commonest write, a single create: the lease, the stamp and the insert in one round
            # trip; with BEGIN and COMMIT gone too when nothing else is to be written with it.
            resource, resource_id = items[0]
            written = await self._insert_alone(resource, resource_id, method) if alone else None
            if written is None:
                written = await version_writes.insert_leased(self.connection, resource, resource_id, self._by,
                                                             method=method, questions=self.subscribers.questions)
            version, pk = written
            stored = [(version, resource)]
            pks = {} if pk is None else {(version.resource_type, version.id): pk}
            deletions = []
        else:
            write_clock = await clock.write_clock(self.connection)
            stored = []
            for resource, resource_id in items:
                version = version_writes.new_version(resource, resource_id, 1, write_clock.stamp(), method=method)
                stored.append((version, resource))
            deletions = self._deletion_versions(doomed, write_clock)
            pks = await version_writes.insert_new(self.connection, stored, self._by,
                                                  then_store=[write for write, _ in deletions])
        versions = [version for version, _ in stored]
        if len(pks) < len(versions):
            stored = [(version, resource) for version, resource in stored if (version.resource_type, version.id) in pks]
        await self._run_hooks(*(WriteEvent(version, resource, None) for version, resource in stored))
        if leased and doomed:  # its statement took the lease and stamped the create alone: the deletions follow
            await self._record_deletions(doomed)
        elif deletions:
            await self._deletions_stored(deletions)
        return [WriteResult(v, created=True) if (v.resource_type, v.id) in pks else None for v in versions]

    async def _insert_alone(
        self, resource: dict[str, Any], resource_id: str, method: str
    ) -> tuple[StoredVersion, int | None] | None:
        """A single create committed by its own statement, when every write subscriber says it writes
        nothing for it (storage.write_events.QuietCreation); None: it goes the transaction's way."""
        conditions = quiet_conditions(self.subscribers.hooks, resource["resourceType"], resource_id, resource)
        if conditions is None:
            return None
        records = [] if self.record_with_create is None else [self.record_with_create(resource["resourceType"],
                                                                                       resource_id)]
        written = await version_writes.insert_alone(
            self.connection, resource, resource_id, self._by, method=method, questions=self.subscribers.questions,
            conditions=conditions, records=records)
        self.recorded_with_create = bool(records) and written is not None and written[1] is not None
        return written

    async def _write_version(
        self, locked: tuple[int, StoredVersion], resource: dict[str, Any], *, method: str
    ) -> WriteResult:
        """A new version of the locked current row (pk, version)."""
        pk, current = locked
        access.require(self.principal, current.resource_type, "c" if current.deleted else "u")
        for enrich in self.subscribers.enrichers:
            await enrich(self, resource)
        if not self.principal.is_admin:
            await self._check_references(resource, previous_pk=None if current.deleted else pk, batch=set())
        stamp = after(current.last_updated, (await clock.write_clock(self.connection)).stamp())
        version = version_writes.new_version(resource, current.id, current.version_id + 1, stamp, method=method)
        self._forget([(current.resource_type, current.id)])
        await version_writes.store(self.connection, pk, version, resource, fresh=False, by=self._by)
        await self._run_hooks(WriteEvent(version, resource, current))
        return WriteResult(version, created=current.deleted)

    async def _current_for_update(self, resource_type: str, resource_id: str) -> tuple[int, StoredVersion] | None:
        """(pk, current version), row-locked on PostgreSQL; None when missing or not visible.

        What was read of it before is forgotten: the lock may find a version committed since, and a
        caller retrying after a PreconditionFailed must read that one. A row this transaction
        locked already (read_ahead) is taken as it was read: nothing can have committed since."""
        visibility = access.visible(self.principal, resource_type, resources, deleted_too=True, each=True)
        key = (resource_type, resource_id)
        known = not visibility and key in self._locked
        held = self._locked.get(key)
        self._forget([key])
        if known:
            return held
        statement = select(resources).where(
            resources.c.resource_type == resource_type,
            resources.c.id == resource_id,
            *visibility,
        )
        if self._dialect == "postgresql":
            # Row lock: two devices updating the same resource take turns, so If-Match sees the truth.
            statement = statement.with_for_update()
        row = (await self.connection.execute(statement)).first()
        return None if row is None else (row.pk, version_from_row(row))

    async def _check_references(
        self, resource: dict[str, Any], *, previous_pk: int | None, batch: set[tuple[str, str]]
    ) -> None:
        """Refuse a version whose new access-conferring references its caller may not set (storage.grants).

        References the previous version already had (`previous_pk`'s index rows) are not new: a
        clinic updating a Task's status keeps pointing at what it pointed at."""
        watched = grants.watched_references(self.principal, resource)
        if not watched:
            return
        if previous_pk is not None:
            r = search_reference
            rows = await self.connection.execute(
                select(r.c.param, r.c.target_type, r.c.target_id).where(
                    r.c.resource_pk == previous_pk, r.c.param.in_(sorted({param for param, _, _ in watched}))
                )
            )
            watched -= {(row.param, row.target_type, row.target_id) for row in rows}
        if watched:
            await grants.check_references(
                self.connection, self.principal, resource["resourceType"], watched, pending=self._pending | batch
            )

    def expect_writes(self, keys: Iterable[tuple[str, str]]) -> None:
        """Declare the (type, id) this transaction will write for its caller before it writes them (a
        transaction Bundle's entries, which may refer to each other in any order). Safe: if one of
        them cannot be written after all, the whole transaction fails."""
        self._pending.update(keys)

    def with_principal(self, principal: Principal) -> FhirRepository:
        """The same transaction, acting for someone else (e.g. the server's own rules)."""
        other = FhirRepository(self.connection, principal, subscribers=self.subscribers)
        other._staged = self._staged
        other._reads = self._reads
        other._locked = self._locked
        other._pending = self._pending
        return other

    async def lock(self, *keys: str) -> None:
        """Until this transaction ends, other transactions locking the same keys wait.

        Several keys are taken in one statement, in sorted order, so that two transactions locking
        overlapping sets cannot deadlock. SQLite already runs one writer at a time (BEGIN IMMEDIATE);
        PostgreSQL takes advisory locks.
        """
        if self._dialect != "postgresql" or not keys:
            return
        ids = sorted({lock_id(k) for k in keys})
        await fetch(self.connection, _ADVISORY_LOCKS, {"ids": ids, "lock_class": LOCK_CLASS})

    async def _serialise_on(self, resource_type: str, query: QueryPairs) -> None:
        """Conditional writes that could match the same resource take turns, so parallel retries create
        one resource however each spells its criteria (`identifier=s|v`, `identifier=v`, in another
        order...): they lock what they name (`criteria_locks`), not the text of the query."""
        await self.lock(*criteria_locks(resource_type, query))

    def defer_hooks(self) -> None:
        """Collect write events instead of running the hooks, until `run_deferred_hooks`."""
        if self._deferred is None:
            self._deferred = []

    async def run_deferred_hooks(self) -> None:
        """Run the hooks once on everything collected since `defer_hooks` (still in the transaction)."""
        events, self._deferred = self._deferred, None
        if events:
            await self._run_hooks(*events)

    async def _run_hooks(self, *events: WriteEvent) -> None:
        if self._deferred is not None:
            self._deferred.extend(events)
            return
        for hook in self.subscribers.hooks:
            await hook(self, events)


def criteria_locks(resource_type: str, query: QueryPairs) -> list[str]:
    """The lock keys of conditional-write criteria: the code of each identifier, id or system-qualified
    token they name, so that every spelling of one identifier (`identifier=s|v`, `identifier=s%7Cv`,
    `identifier=v`, with other parameters or in another order) takes the same lock; the whole
    normalised query when it names none. Two criteria that share a key serialise even if they could
    never match the same resource: harmless, as only conditional writes take these locks."""
    params = registry().params_for(resource_type)
    keys: set[str] = set()
    for name, value in query:
        param = params.get(name)
        if name != "_id" and (param is None or param.type != "token"):
            continue
        for alternative in value.split(","):
            system, bar, code = alternative.rpartition("|")
            if code.strip() and (name in ("_id", "identifier") or (bar and system)):
                keys.add(f"{resource_type}|{code.strip()}")
    if not keys:
        keys.add(resource_type + "?" + "&".join(f"{k}={v}" for k, v in sorted(query)))
    return sorted(keys)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) == 36


def _check_if_match(current: StoredVersion, if_match: int | None) -> None:
    if if_match is not None and (current.deleted or current.version_id != if_match):
        raise PreconditionFailed(
            f"{current.resource_type}/{current.id} is at version {current.version_id}, not {if_match}: "
            "read it again and reapply your change",
            headers={"ETag": current.etag},
        )


def _id_issue(resource_type: str) -> Issue:
    return Issue("id is missing or wrong", "invalid", expression=(f"{resource_type}.id",))
