"""batch and transaction Bundles (FHIR R4 http.html#transaction).

A transaction is all or nothing: it runs inside the request's single database transaction, and the
first failing entry raises, which rolls everything back. Entries run in the order the specification
sets (DELETE, POST, PUT/PATCH, GET/HEAD) and are answered in request order. Before anything is
written, every POST gets its id, every conditional create and conditional update is resolved, and
every `urn:uuid:` fullUrl and conditional reference is replaced in all entries, so references
between entries always point at the final ids.

A batch runs each entry in its own savepoint: one entry's failure is its own OperationOutcome.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl

from api.bundles import raw
from api.fhir_router import FhirRequest, FhirResult, SearchFn, dispatch
from api.fhir_router import written as entry_result
from api.preconditions import checked_criteria, criteria
from fhir_mappings.outcomes import FhirError, Invalid, Issue, PreconditionFailed, TooLarge
from fhir_mappings.validation import validate_resource
from storage.repository import FhirRepository
from storage.versions import fhir_instant, now_ms

_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


@dataclass
class _Entry:
    index: int
    full_url: str | None
    request: FhirRequest
    preresolved: FhirResult | None = None  # a conditional create that found its match


def _entries(bundle: dict[str, Any], max_entries: int, transaction: bool) -> list[_Entry]:
    raw_entries = bundle.get("entry") or []
    if not isinstance(raw_entries, list):
        raise Invalid("Bundle.entry must be an array")
    if len(raw_entries) > max_entries:
        raise TooLarge(f"The Bundle has {len(raw_entries)} entries; the limit is {max_entries}")
    entries = []
    for i, entry in enumerate(raw_entries):
        where = f"Bundle.entry[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
            raise Invalid(
                f"{where}: an entry needs a request",
                issues=[Issue(f"{where}.request is missing", "required", expression=(f"{where}.request",))],
            )
        request = entry["request"]
        method, url = request.get("method"), request.get("url")
        if method not in _ORDER or not isinstance(url, str) or not url:
            raise Invalid(f"{where}.request needs a method (GET HEAD POST PUT PATCH DELETE) and a url")
        resource = entry.get("resource")
        if transaction and isinstance(resource, dict) and resource.get("resourceType") == "Bundle" and method != "GET":
            raise Invalid(f"{where}: a transaction may not contain a Bundle (nested Bundles are refused)")
        entries.append(
            _Entry(
                i,
                entry.get("fullUrl"),
                FhirRequest.from_url(
                    method,
                    url,
                    resource=resource,
                    if_match=request.get("ifMatch"),
                    if_none_match=request.get("ifNoneMatch"),
                    if_none_exist=request.get("ifNoneExist"),
                    if_modified_since=request.get("ifModifiedSince"),
                ),
            )
        )
    return entries


async def process_bundle(
    repository: FhirRepository,
    bundle: Any,
    *,
    base_url: str,
    max_entries: int,
    search: SearchFn | None,
    minimal: bool = False,
) -> dict[str, Any]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise Invalid("POST /fhir takes a Bundle of type batch or transaction")
    kind = bundle.get("type")
    if kind not in ("batch", "transaction"):
        raise Invalid(
            f"Bundle.type '{kind}' cannot be processed: POST /fhir takes batch or transaction "
            "(store other Bundles with POST /fhir/Bundle)"
        )
    transaction = kind == "transaction"
    entries = _entries(bundle, max_entries, transaction)
    if transaction:
        results = await _transaction(repository, entries, search)
    else:
        results = await _batch(repository, entries, search)
    response_entries = [_response_entry(result, base_url, minimal) for result in results]
    return {
        "resourceType": "Bundle",
        "type": f"{kind}-response",
        "meta": {"lastUpdated": fhir_instant(now_ms())},
        "link": [{"relation": "self", "url": base_url}],
        "entry": response_entries,
    }


async def _transaction(repository: FhirRepository, entries: list[_Entry], search: SearchFn | None) -> list[FhirResult]:
    await _check_resources(entries)
    mapping = await _assign_ids(repository, entries)
    repository.expect_writes(_written_here(entries))
    for entry in entries:
        if entry.request.resource is not None:
            entry.request.resource = await _rewrite(repository, entry, entry.request.resource, mapping)
    results: dict[int, FhirResult] = {}
    # Hooks (derived clinical facts) judge the Bundle's writes together, once, before any read.
    repository.defer_hooks()
    ordered = sorted(entries, key=lambda e: (_ORDER[e.request.method], e.index))
    creates = [e for e in ordered if _plain_create(e)]
    for entry in ordered:
        if creates and _ORDER[entry.request.method] >= _ORDER["POST"]:
            await _create_together(repository, creates, results)
            creates = []
        if entry.index in results:
            continue
        if entry.preresolved is not None:
            results[entry.index] = entry.preresolved
            continue
        if entry.request.method in ("GET", "HEAD"):
            await repository.run_deferred_hooks()
        try:
            results[entry.index] = await dispatch(repository, entry.request, search)
        except FhirError as exc:
            raise _at_entry(exc, entry) from exc
    await repository.run_deferred_hooks()
    return [results[e.index] for e in entries]


async def _create_together(repository: FhirRepository, creates: list[_Entry], results: dict[int, FhirResult]) -> None:
    """The POSTs in one go, right after the DELETEs (their place in the processing order)."""
    written = await repository.create_many(
        [(e.request.resource, e.request.assigned_id) for e in creates],  # type: ignore[misc]
        validated=True,  # by _check_resources, which names the failing entry
    )
    results.update((e.index, entry_result(w)) for e, w in zip(creates, written, strict=True))


def _plain_create(entry: _Entry) -> bool:
    """A POST whose id is decided and whose conditions are resolved: it can be written with the others."""
    request = entry.request
    return (
        request.method == "POST"
        and entry.preresolved is None
        and request.assigned_id is not None
        and isinstance(request.resource, dict)
        and not request.if_none_exist
    )


async def _batch(repository: FhirRepository, entries: list[_Entry], search: SearchFn | None) -> list[FhirResult]:
    results: dict[int, FhirResult] = {}
    for entry in sorted(entries, key=lambda e: (_ORDER[e.request.method], e.index)):
        try:
            async with repository.savepoint():
                results[entry.index] = await dispatch(repository, entry.request, search)
        except FhirError as exc:
            results[entry.index] = FhirResult(exc.status, body=_at_entry(exc, entry).outcome())
    return [results[e.index] for e in entries]


async def _check_resources(entries: list[_Entry]) -> None:
    for entry in entries:
        if entry.request.method in ("POST", "PUT") and entry.request.resource is not None:
            try:
                segments = entry.request.segments
                validate_resource(entry.request.resource, expected_type=segments[0] if segments else None)
            except FhirError as exc:
                raise _at_entry(exc, entry) from exc


async def _assign_ids(repository: FhirRepository, entries: list[_Entry]) -> dict[str, str]:
    """fullUrl -> Type/id for every entry that creates or updates, decided before any write."""
    mapping: dict[str, str] = {}
    for entry in entries:
        request = entry.request
        segments, query = request.segments, request.query
        try:
            if request.method == "POST" and isinstance(request.resource, dict):
                resource_type = segments[0]
                if request.if_none_exist:
                    match_id = await repository.single_match(
                        resource_type, criteria(request.if_none_exist), what="ifNoneExist"
                    )
                    if match_id is not None:
                        version = await repository.read(resource_type, match_id)
                        entry.preresolved = FhirResult(200, version=version)
                        _map(mapping, entry.full_url, version.reference)
                        continue
                request.assigned_id = str(uuid.uuid4())
                request.if_none_exist = None  # resolved above, under the criteria's lock
                _map(mapping, entry.full_url, f"{resource_type}/{request.assigned_id}")
            elif request.method == "PUT" and segments:
                if len(segments) == 1:  # conditional update: resolve to a plain PUT on the match or a new id
                    match_id = await repository.single_match(
                        segments[0], checked_criteria(query), what="The conditional update"
                    )
                    target_id = match_id or str(uuid.uuid4())
                    body_id = (request.resource or {}).get("id")
                    if match_id is not None and body_id not in (None, target_id):
                        raise Invalid(f"The resource's id '{body_id}' differs from the match '{target_id}'")
                    request.point_at(target_id)
                    request.resource = {**(request.resource or {}), "id": target_id}
                    segments = request.segments
                _map(mapping, entry.full_url, f"{segments[0]}/{segments[1]}")
        except FhirError as exc:
            raise _at_entry(exc, entry) from exc
    return mapping


def _written_here(entries: list[_Entry]) -> set[tuple[str, str]]:
    """(type, id) of what the transaction's POST and PUT entries write, once their ids are decided."""
    keys = set()
    for entry in entries:
        request = entry.request
        if request.method == "POST" and request.assigned_id:
            keys.add((request.resource_type, request.assigned_id))
        elif request.method == "PUT" and len(request.segments) == 2:
            keys.add((request.segments[0], request.segments[1]))
    return keys


def _map(mapping: dict[str, str], full_url: str | None, reference: str) -> None:
    if full_url:
        mapping[full_url] = reference


async def _rewrite(repository: FhirRepository, entry: _Entry, node: Any, mapping: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                out[key] = await _resolve_reference(repository, entry, value, mapping)
            else:
                out[key] = await _rewrite(repository, entry, value, mapping)
        return out
    if isinstance(node, list):
        return [await _rewrite(repository, entry, item, mapping) for item in node]
    return node


async def _resolve_reference(repository: FhirRepository, entry: _Entry, value: str, mapping: dict[str, str]) -> str:
    if value in mapping:
        return mapping[value]
    if value.startswith(("urn:uuid:", "urn:oid:")):
        raise _at_entry(Invalid(f"Reference '{value}' names no fullUrl in this Bundle"), entry)
    if "?" in value and not value.startswith(("http://", "https://")):
        resource_type, _, query = value.partition("?")
        try:
            match_id = await repository.single_match(
                resource_type, parse_qsl(query, keep_blank_values=True), what=f"Conditional reference '{value}'"
            )
        except PreconditionFailed as exc:
            raise _at_entry(exc, entry) from exc
        if match_id is None:
            raise _at_entry(
                PreconditionFailed(f"Conditional reference '{value}' matched no {resource_type}; it must match one"),
                entry,
            )
        resolved = f"{resource_type}/{match_id}"
        mapping[value] = resolved
        return resolved
    return value


def _at_entry(exc: FhirError, entry: _Entry) -> FhirError:
    where = f"Bundle.entry[{entry.index}]"
    if exc.diagnostics.startswith(where):
        return exc
    issues = [
        replace(
            issue,
            diagnostics=f"{where} ({entry.request.method} {entry.request.url}): {issue.diagnostics}",
            expression=tuple(
                f"{where}.resource.{e.split('.', 1)[1]}" if "." in e else f"{where}.resource" for e in issue.expression
            )
            or (where,),
        )
        for issue in exc.issues
    ]
    new = type(exc)(
        f"{where} ({entry.request.method} {entry.request.url}): {exc.diagnostics}", issues=issues, headers=exc.headers
    )
    return new


def _response_entry(result: FhirResult, base_url: str, minimal: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    version = result.version
    if version is not None:
        entry["fullUrl"] = f"{base_url}/{version.resource_type}/{version.id}"
        if not minimal and version.content is not None and result.status != 304:
            entry["resource"] = raw(version.content)
    elif result.body is not None and result.status < 300 and not minimal:
        entry["resource"] = result.body
    response = result.response()
    if result.status >= 400 and result.body is not None:
        response["outcome"] = result.body
    entry["response"] = response
    return entry
