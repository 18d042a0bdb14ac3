"""FhirRepository.referring_to, the clinical rules' per-patient lookup, against the general search."""

from __future__ import annotations

LOINC = "http://loinc.org"


def _observation(oid: str, subject: str, code: str, system: str = LOINC) -> tuple[dict, str]:
    return ({"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": system, "code": code}]},
             "subject": {"reference": subject}, "effectiveDateTime": "2025-03-02"}, oid)


async def test_finds_what_the_equivalent_search_finds(repository_in):
    async with repository_in(write=True) as repository:
        await repository.create_many([
            _observation("w1", "Patient/kid", "29463-7"),
            _observation("l1", "Patient/kid", "8306-3"),
            _observation("h1", "Patient/kid", "718-7"),  # another code
            _observation("x1", "Patient/kid", "29463-7", system="http://example.org/local"),  # another system
            _observation("w2", "Patient/other", "29463-7"),  # another patient
            _observation("w3", "Group/kid", "29463-7"),  # another target type
            _observation("gone", "Patient/kid", "29463-7"),
        ])
        await repository.delete("Observation", "gone")
    async with repository_in(write=False) as repository:
        growth = [(LOINC, "29463-7"), (LOINC, "8306-3")]
        found = await repository.referring_to("Observation", "subject", "Patient", ["kid"], codes=growth)
        assert [v.id for v in found] == ["w1", "l1"]  # oldest first, deletions left out
        assert all(v.content is not None and not v.deleted for v in found)
        search = await repository.search_matches(
            "Observation", [("subject", "Patient/kid"), ("code", f"{LOINC}|29463-7,{LOINC}|8306-3")])
        assert [rid for _, rid in search] == [v.id for v in found]
        every = await repository.referring_to("Observation", "subject", "Patient", ["kid"])
        assert [v.id for v in every] == ["w1", "l1", "h1", "x1"]
        assert await repository.referring_to("Observation", "patient", "Patient", ["nobody"]) == []
        both = await repository.referring_to("Observation", "subject", "Patient", ["kid", "other"], codes=growth)
        assert [v.id for v in both] == ["w1", "l1", "w2"]
