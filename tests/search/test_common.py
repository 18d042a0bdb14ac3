"""Parameters every resource has (FHIR R4 search.html#all): _id, _tag, _security, _profile; deleted resources."""

from __future__ import annotations

import pytest

from tests.search.conftest import found_ids, ids

ORIGIN = "https://puente.example.org/fhir/CodeSystem/data-origin"
CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


def _patient(pid: str, *tags, security=None):
    meta = {}
    if tags:
        meta["tag"] = [{"system": ORIGIN, "code": t, "display": f"origin {t}"} for t in tags]
    if security:
        meta["security"] = [{"system": CONF, "code": security}]
    return {"resourceType": "Patient", "id": pid, **({"meta": meta} if meta else {})}


RESOURCES = [
    _patient("a", "synthetic"),
    _patient("b", "chw-app", security="R"),
    _patient("c", "synthetic", "chw-app"),
    _patient("d"),
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Patient?_id=a", "a"),
        ("Patient?_id=a,c,zz", "a c"),
        ("Patient?_id:not=a", "b c d"),
        ("Patient?_id=a&_id=b", ""),
        ("Patient?_id:missing=true", ""),
        ("Patient?_id:missing=false", "a b c d"),
        (f"Patient?_tag={ORIGIN}|synthetic", "a c"),
        ("Patient?_tag=chw-app", "b c"),
        ("Patient?_tag:not=synthetic", "b d"),
        ("Patient?_tag:text=origin", "a b c"),
        ("Patient?_tag:missing=true", "d"),
        ("Patient?_security=R", "b"),
        (f"Patient?_security={CONF}|R", "b"),
        ("Patient?_security:missing=false", "b"),
        ("Patient", "a b c d"),
    ],
)
async def test_common_parameters(loaded, query, expected):
    assert await found_ids(loaded, query) == ids(expected)


async def test_deleted_resources_never_match(client):
    for resource in RESOURCES:
        await client.put(f"/fhir/Patient/{resource['id']}", json=resource)
    assert (await client.delete("/fhir/Patient/a")).status_code in (200, 204)
    assert await found_ids(client, "Patient?_id=a") == set()
    assert await found_ids(client, "Patient?_tag=synthetic") == {"c"}
    assert await found_ids(client, "Patient") == {"b", "c", "d"}
    assert await found_ids(client, "Patient?_tag:missing=true") == {"d"}
    # an update replaces the index rows: the old tag no longer matches
    await client.put("/fhir/Patient/c", json=_patient("c", "other"))
    assert await found_ids(client, "Patient?_tag=synthetic") == set()
    assert await found_ids(client, "Patient?_tag=other") == {"c"}
