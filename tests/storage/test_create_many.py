"""FhirRepository.create_many: the write path of a Bundle's POSTs and of seed-demo, on both databases."""

from __future__ import annotations

import pytest

from fhir_mappings.outcomes import Conflict
from storage.repository import FhirRepository

DNI = "https://puente.example.org/fhir/sid/pe-dni"


def _patient(pid: str, dni: str) -> dict:
    return {"resourceType": "Patient", "id": pid, "identifier": [{"system": DNI, "value": dni}],
            "name": [{"family": "Nuñez"}], "birthDate": "2024-02-29"}


async def _ids(repository: FhirRepository, query: list[tuple[str, str]]) -> set[str]:
    return {rid for _, rid in await repository.search_matches("Patient", query)}


async def test_created_together_are_stored_with_history_and_indexes(repository_in):
    async with repository_in(write=True) as repository:
        written = await repository.create_many([(_patient(f"p{i}", f"4000000{i}"), f"p{i}") for i in range(5)])
        assert [w.version.id for w in written] == [f"p{i}" for i in range(5)]
        assert all(w.created and w.version.version_id == 1 for w in written)
    async with repository_in(write=False) as repository:
        assert await _ids(repository, [("identifier", f"{DNI}|40000003")]) == {"p3"}
        assert await _ids(repository, [("name", "nunez")]) == {f"p{i}" for i in range(5)}
        assert await _ids(repository, [("birthdate", "2024-02")]) == {f"p{i}" for i in range(5)}
        assert (await repository.vread("Patient", "p2", "1")).content is not None
        page = await repository.history("Patient", "p4")
        assert [v.version_id for v in page.versions] == [1] and page.versions[0].method == "POST"


async def test_a_taken_id_is_a_conflict_and_the_transaction_keeps_nothing(repository_in):
    async with repository_in(write=True) as repository:
        await repository.create_many(
            [(_patient("taken", "50000000"), "taken")])
    with pytest.raises(Conflict, match="Patient/taken"):
        async with repository_in(write=True) as repository:
            await repository.create_many([(_patient("fresh", "50000001"), "fresh"),
                                          (_patient("taken", "50000002"), "taken")])
    async with repository_in(write=False) as repository:
        assert not await repository.exists("Patient", "fresh")
        assert await _ids(repository, [("identifier", f"{DNI}|50000002")]) == set()
        assert await _ids(repository, [("identifier", f"{DNI}|50000000")]) == {"taken"}
        assert len((await repository.history("Patient", "taken")).versions) == 1
