"""FhirRepository.delete_many: the rules undoing several derived resources at once, on both databases."""

from __future__ import annotations

import pytest

from fhir_mappings.outcomes import Gone, PreconditionFailed
from storage.repository import FhirRepository


def _observation(oid: str) -> tuple[dict, str]:
    return ({"resourceType": "Observation", "status": "final",
             "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
             "subject": {"reference": "Patient/kid"}}, oid)


async def _subject_ids(repository: FhirRepository) -> set[str]:
    return {rid for _, rid in await repository.search_matches("Observation", [("subject", "Patient/kid")])}


async def test_deletes_each_at_its_version_with_history_and_no_index_rows(repository_in):
    async with repository_in(write=True) as repository:
        await repository.create_many([_observation(oid) for oid in ("a", "b", "c")])
        await repository.update("Observation", "b", {**_observation("b")[0], "id": "b"})  # b is at version 2
    async with repository_in(write=True) as repository:
        deleted = await repository.delete_many("Observation", {"b": 2, "a": 1})
        assert [(v.id, v.version_id, v.deleted, v.method) for v in deleted] == [
            ("a", 2, True, "DELETE"), ("b", 3, True, "DELETE")]
    async with repository_in(write=False) as repository:
        assert await _subject_ids(repository) == {"c"}
        with pytest.raises(Gone):
            await repository.read("Observation", "a")
        assert [v.version_id for v in (await repository.history("Observation", "b")).versions] == [3, 2, 1]


async def test_a_stale_version_deletes_nothing(repository_in):
    async with repository_in(write=True) as repository:
        await repository.create_many([_observation(oid) for oid in ("a", "b")])
    for expected in ({"a": 1, "b": 2}, {"a": 1, "missing": 1}):
        with pytest.raises(PreconditionFailed):
            async with repository_in(write=True) as repository:
                await repository.delete_many("Observation", expected)
    async with repository_in(write=False) as repository:
        assert await _subject_ids(repository) == {"a", "b"}
        assert (await repository.read("Observation", "a")).version_id == 1
