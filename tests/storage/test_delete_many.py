"""FhirRepository.delete_many: the rules undoing several derived resources at once, on both databases."""

from __future__ import annotations

import pytest

from fhir_mappings.outcomes import Gone
from storage.repository import FhirRepository
from storage.versions import StoredVersion


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
