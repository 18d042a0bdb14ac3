"""_include and _revinclude (FHIR R4 search.html#include): targets, wildcards, :iterate, modes, no duplicates."""

from __future__ import annotations

from tests.conftest import BASE
from tests.search.conftest import search

LOINC = "http://loinc.org"


def _obs(oid: str, patient: str, code: str = "718-7", **extra):
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        **extra,
    }


RESOURCES = [
    {"resourceType": "Organization", "id": "org1", "name": "Posta"},
    {"resourceType": "Practitioner", "id": "chw1"},
    {
        "resourceType": "Patient",
        "id": "p1",
        "managingOrganization": {"reference": "Organization/org1"},
        "generalPractitioner": [{"reference": "Practitioner/chw1"}],
    },
    {"resourceType": "Patient", "id": "p2", "link": [{"other": {"reference": "Patient/p1"}, "type": "seealso"}]},
    {"resourceType": "Patient", "id": "p3"},
    _obs("o1", "p1", performer=[{"reference": "Practitioner/chw1"}]),
    _obs("o2", "p1"),
    _obs("o3", "p2"),
    _obs("o4", "p3", code="29463-7"),
    _obs("o5", "gone"),  # points at nothing stored
    {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "class": {"code": "HH"},
        "subject": {"reference": "Patient/p1"},
    },
]


def _by_mode(body):
    out: dict[str, set[str]] = {"match": set(), "include": set()}
    for entry in body.get("entry", []):
        resource = entry["resource"]
        key = f"{resource['resourceType']}/{resource['id']}"
        assert entry["fullUrl"] == f"{BASE}/fhir/{key}"
        assert key not in out["match"] | out["include"], f"{key} twice"
        out[entry["search"]["mode"]].add(key)
    return out["match"], out["include"]


async def test_include_follows_references_from_the_matches(loaded):
    matches, included = _by_mode(await search(loaded, "Observation?code=718-7&_include=Observation:subject"))
    assert matches == {"Observation/o1", "Observation/o2", "Observation/o3", "Observation/o5"}
    assert included == {"Patient/p1", "Patient/p2"}  # each once; the dangling reference adds nothing
    _, included = _by_mode(await search(loaded, "Observation?_id=o1&_include=Observation:subject:Patient"))
    assert included == {"Patient/p1"}
    _, included = _by_mode(await search(loaded, "Observation?_id=o1&_include=Observation:*"))
    assert included == {"Patient/p1", "Practitioner/chw1"}
    _, included = _by_mode(await search(loaded, "Observation?_id=o1&_include=*"))
    assert included == {"Patient/p1", "Practitioner/chw1"}
    _, included = _by_mode(
        await search(loaded, "Observation?_id=o1&_include=Observation:subject&_include=Observation:performer")
    )
    assert included == {"Patient/p1", "Practitioner/chw1"}
    # an include that does not start from the searched type adds nothing without :iterate
    _, included = _by_mode(await search(loaded, "Observation?_id=o1&_include=Patient:organization"))
    assert included == set()


async def test_include_iterate_goes_on_from_included_resources(loaded):
    url = "Observation?_id=o3&_include=Observation:subject&_include:iterate=Patient:link"
    _, included = _by_mode(await search(loaded, url))
    assert included == {"Patient/p2", "Patient/p1"}
    url += "&_include:iterate=Patient:organization"
    _, included = _by_mode(await search(loaded, url))
    assert included == {"Patient/p2", "Patient/p1", "Organization/org1"}


async def test_revinclude_finds_what_references_the_matches(loaded):
    matches, included = _by_mode(await search(loaded, "Patient?_id=p1&_revinclude=Observation:subject"))
    assert matches == {"Patient/p1"}
    assert included == {"Observation/o1", "Observation/o2"}
    _, included = _by_mode(await search(loaded, "Patient?_id=p1&_revinclude=*"))
    assert included == {"Observation/o1", "Observation/o2", "Encounter/e1", "Patient/p2"}
    _, included = _by_mode(
        await search(
            loaded,
            "Practitioner?_id=chw1&_revinclude=Patient:general-practitioner&_revinclude:iterate=Observation:subject",
        )
    )
    assert included == {"Patient/p1", "Observation/o1", "Observation/o2"}
    # both directions at once; a match is never repeated as an include
    matches, included = _by_mode(
        await search(loaded, "Patient?_id=p1,p2&_revinclude=Patient:link&_include=Patient:organization")
    )
    assert matches == {"Patient/p1", "Patient/p2"} and included == {"Organization/org1"}


async def test_includes_with_summary_and_paging(loaded):
    body = await search(loaded, "Observation?code=718-7&_count=1&_include=Observation:subject&_sort=_id")
    matches, included = _by_mode(body)
    assert matches == {"Observation/o1"} and included == {"Patient/p1"}
    nxt = next(link["url"] for link in body["link"] if link["relation"] == "next")
    assert "_include=Observation:subject" in nxt
    counted = await search(loaded, "Observation?code=718-7&_include=Observation:subject&_summary=count")
    assert counted["total"] == 4 and not counted.get("entry")


async def test_includes_cut_short_say_so_in_an_outcome_entry(loaded, monkeypatch):
    import storage.search.engine as engine

    monkeypatch.setattr(engine, "MAX_INCLUDED", 1)  # the real limit is 5,000 per page
    body = await search(loaded, "Patient?_revinclude=Observation:subject")
    modes = [e["search"]["mode"] for e in body["entry"]]
    assert modes.count("include") == 1 and modes[-1] == "outcome"
    outcome = body["entry"][-1]["resource"]
    assert outcome["issue"][0]["severity"] == "warning" and outcome["issue"][0]["code"] == "incomplete"
    monkeypatch.setattr(engine, "MAX_INCLUDED", 5000)
    whole = await search(loaded, "Patient?_revinclude=Observation:subject")
    assert "outcome" not in [e["search"]["mode"] for e in whole["entry"]]
