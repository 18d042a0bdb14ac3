"""FhirRepository.delete_many: the rules undoing several derived resources at once, on both databases."""

from __future__ import annotations

import pytest

from fhir_mappings.outcomes import Gone
from storage.repository import Deletions, FhirRepository
from storage.versions import StoredVersion
from storage.write_events import WriteSubscribers


def _observation(oid: str) -> tuple[dict, str]:
    return ({"resourceType": "Observation", "status": "final",
             "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
             "subject": {"reference": "Patient/kid"}}, oid)


async def _subject_ids(repository: FhirRepository) -> set[str]:
    return {rid for _, rid in await repository.search_matches("Observation", [("subject", "Patient/kid")])}


async def test_deletes_each_with_history_and_no_index_rows(repository_in):
    async with repository_in(write=True) as repository:
        await repository.create_many([_observation(oid) for oid in ("a", "b", "c")])
        await repository.update("Observation", "b", {**_observation("b")[0], "id": "b"})  # b is at version 2
    async with repository_in(write=True) as repository:
        deleted = await repository.delete_many("Observation", ["b", "a"])
        assert [(v.id, v.version_id, v.deleted, v.method) for v in deleted] == [
            ("a", 2, True, "DELETE"), ("b", 3, True, "DELETE")]
    async with repository_in(write=False) as repository:
        assert await _subject_ids(repository) == {"c"}
        with pytest.raises(Gone):
            await repository.read("Observation", "a")
        assert [v.version_id for v in (await repository.history("Observation", "b")).versions] == [3, 2, 1]
        assert (await repository.history("Observation", "b")).versions[0].content is None


async def test_deletes_only_what_the_judge_accepts_of_what_exists(repository_in):
    """Missing ids and deleted resources are passed over; the judge sees each current version."""
    async with repository_in(write=True) as repository:
        await repository.create_many([_observation(oid) for oid in ("a", "b", "gone")])
        await repository.update("Observation", "b", {**_observation("b")[0], "id": "b"})
        await repository.delete("Observation", "gone")
    judged = []

    def only_first_versions(now: StoredVersion) -> bool:
        judged.append((now.id, now.version_id))
        return now.version_id == 1

    async with repository_in(write=True) as repository:
        deleted = await repository.delete_many("Observation", ["missing", "gone", "b", "a"], only_first_versions)
    assert [(v.id, v.version_id) for v in deleted] == [("a", 2)]
    assert judged == [("a", 1), ("b", 2)]
    async with repository_in(write=False) as repository:
        assert await _subject_ids(repository) == {"b"}
        assert (await repository.read("Observation", "b")).version_id == 2
        assert [v.version_id for v in (await repository.history("Observation", "gone")).versions] == [2, 1]


async def test_a_failed_transaction_deletes_nothing(repository_in):
    async with repository_in(write=True) as repository:
        await repository.create_many([_observation(oid) for oid in ("a", "b")])
    with pytest.raises(RuntimeError):
        async with repository_in(write=True) as repository:
            await repository.delete_many("Observation", ["a", "b"])
            raise RuntimeError("the write failed after its deletions")
    async with repository_in(write=False) as repository:
        assert await _subject_ids(repository) == {"a", "b"}
        assert (await repository.read("Observation", "a")).version_id == 1


async def test_creates_and_deletions_in_one_call(repository_in):
    """create_unless_taken(then_delete=...): the judged deletions recorded with the new resources,
    stamped after them; a taken id is passed over and the deletions still happen; the hooks see the
    creations, then the deletions."""
    async with repository_in(write=True) as repository:
        await repository.create_many([_observation(oid) for oid in ("old", "kept", "taken")])
    seen_events: list[list[tuple[str, int, bool]]] = []

    async def recording(_: FhirRepository, events) -> None:
        seen_events.append([(e.version.id, e.version.version_id, e.version.deleted) for e in events])

    async with repository_in(write=True) as plain:
        repository = FhirRepository(plain.connection, plain.principal,
                                    subscribers=WriteSubscribers(hooks=(recording,)))
        results = await repository.create_unless_taken(
            [_observation("new"), _observation("taken")],
            then_delete=Deletions("Observation", ["old", "kept", "missing"], lambda now: now.id != "kept"))
    assert [r is not None for r in results] == [True, False]
    assert seen_events == [[("new", 1, False)], [("old", 2, True)]]
    async with repository_in(write=False) as repository:
        assert await _subject_ids(repository) == {"new", "kept", "taken"}
        new = await repository.read("Observation", "new")
        [deletion, _] = (await repository.history("Observation", "old")).versions
        assert deletion.deleted and deletion.last_updated >= new.last_updated
        assert (await repository.read("Observation", "taken")).version_id == 1


async def test_a_failed_transaction_keeps_neither(repository_in):
    async with repository_in(write=True) as repository:
        await repository.create_many([_observation("old")])
    with pytest.raises(RuntimeError):
        async with repository_in(write=True) as repository:
            await repository.create_unless_taken([_observation("new")],
                                                 then_delete=Deletions("Observation", ["old"], lambda _: True))
            raise RuntimeError("the write failed after its statement")
    async with repository_in(write=False) as repository:
        assert await _subject_ids(repository) == {"old"}


async def test_a_single_create_that_takes_the_lease_deletes_after_it(repository_in):
    """A transaction's first write, a single create, takes the write lease in its own statement
    (PostgreSQL): the deletions follow it in a statement of their own, stamped after it."""
    async with repository_in(write=True) as repository:
        await repository.create_many([_observation("old")])
    async with repository_in(write=True) as repository:
        [created] = await repository.create_unless_taken(
            [_observation("new")], then_delete=Deletions("Observation", ["old"], lambda _: True))
    assert created is not None
    async with repository_in(write=False) as repository:
        assert await _subject_ids(repository) == {"new"}
        [deletion, _] = (await repository.history("Observation", "old")).versions
        assert deletion.deleted and deletion.last_updated >= created.version.last_updated
