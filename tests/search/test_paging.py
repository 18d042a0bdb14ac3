"""_sort, keyset paging that stays correct while data changes, _count, _total, _summary and _elements."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from tests.conftest import BASE
from tests.search.conftest import found_ids, search


def _patient(pid: str, family: str | None, birth: str | None, gender: str = "female"):
    body = {"resourceType": "Patient", "id": pid, "gender": gender}
    if family:
        body["name"] = [{"family": family}]
    if birth:
        body["birthDate"] = birth
    return body


PEOPLE = [
    _patient("p1", "Quispe", "2021-03-01"),
    _patient("p2", "Mamani", "2022-07-15", "male"),
    _patient("p3", "Ñahui", "2020-01-20"),
    _patient("p4", "apaza", "2023-05-05", "male"),
    _patient("p5", None, "2019-11-30"),
    _patient("p6", "Choque", None),
    _patient("p7", "Huamán", "2022-07-15"),
]


async def _store(client, resources):
    for resource in resources:
        r = await client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
        assert r.status_code in (200, 201), r.text


def _order(body):
    return [e["resource"]["id"] for e in body.get("entry", []) if e["search"]["mode"] == "match"]


def _link(body, relation):
    url = next((link["url"] for link in body["link"] if link["relation"] == relation), None)
    return None if url is None else url.removeprefix(BASE)


async def test_sort_by_one_and_several_keys(client):
    await _store(client, PEOPLE)
    # strings sort on their normalised form ("apaza" < "Choque" < ... < "Ñahui" as "nahui"); missing last
    assert _order(await search(client, "Patient?_sort=family")) == ["p4", "p6", "p7", "p2", "p3", "p1", "p5"]
    assert _order(await search(client, "Patient?_sort=-family")) == ["p1", "p3", "p2", "p7", "p6", "p4", "p5"]
    assert _order(await search(client, "Patient?_sort=birthdate")) == ["p5", "p3", "p1", "p2", "p7", "p4", "p6"]
    # equal values: pk breaks the tie, in the direction of the last key
    assert _order(await search(client, "Patient?_sort=-birthdate"))[:3] == ["p4", "p7", "p2"]
    assert _order(await search(client, "Patient?_sort=gender,-birthdate")) == [
        "p7",
        "p1",
        "p3",
        "p5",
        "p6",
        "p4",
        "p2",
    ]
    assert _order(await search(client, "Patient?_sort=-_id")) == ["p7", "p6", "p5", "p4", "p3", "p2", "p1"]
    assert _order(await search(client, "Patient?_sort=_lastUpdated")) == [p["id"] for p in PEOPLE]
    assert _order(await search(client, "Patient?_sort=-_lastUpdated")) == [p["id"] for p in reversed(PEOPLE)]
    assert _order(await search(client, "Patient")) == [p["id"] for p in PEOPLE]  # default: lastUpdated


async def test_pages_follow_next_and_previous(client):
    await _store(client, PEOPLE)
    for sort in ("", "&_sort=-birthdate", "&_sort=family,_id", "&_sort=-_lastUpdated"):
        everything = _order(await search(client, f"Patient?_count=100{sort}"))
        pages, url = [], f"/fhir/Patient?_count=3{sort}"
        bodies = []
        while url:
            body = await search(client, url)
            bodies.append(body)
            pages.append(_order(body))
            url = _link(body, "next")
        assert [len(p) for p in pages] == [3, 3, 1], sort
        assert [i for page in pages for i in page] == everything, sort
        assert _link(bodies[0], "previous") is None
        back = await search(client, _link(bodies[2], "previous"))
        assert _order(back) == pages[1], sort
        back = await search(client, _link(back, "previous"))
        assert _order(back) == pages[0], sort
        assert _link(back, "previous") is None
        assert _order(await search(client, _link(back, "next"))) == pages[1]


async def test_paging_stays_correct_while_data_changes(client):
    await _store(client, PEOPLE)
    first = await search(client, "Patient?_count=3&_sort=family")
    assert _order(first) == ["p4", "p6", "p7"]
    # meanwhile: one already seen and one not yet seen are deleted, new ones arrive on both sides
    await client.delete("/fhir/Patient/p6")
    await client.delete("/fhir/Patient/p3")
    await _store(client, [_patient("n1", "Aaron", None), _patient("n2", "Zapata", None)])
    second = await search(client, _link(first, "next"))
    # continues after "Huamán" as of the first page: nothing skipped, nothing repeated, nothing deleted
    assert _order(second) == ["p2", "p1", "p5"]
    assert _link(second, "next") is None
    watermark = first["meta"]["lastUpdated"]
    assert second["meta"]["lastUpdated"] == watermark  # every page answers as of the first
    # what arrived meanwhile, on either side of the cursor, is in the next poll
    assert _order(await search(client, f"Patient?_sort=family&_lastUpdated=gt{watermark}")) == ["n1", "n2"]


async def test_default_order_shows_changes_in_order_for_incremental_pulls(client):
    await _store(client, PEOPLE[:4])
    first = await search(client, "Patient?_count=2")
    assert _order(first) == ["p1", "p2"]
    await _store(client, [{**PEOPLE[0], "gender": "other"}])  # p1 changes after it was seen
    rest = await found_ids(client, _link(first, "next"))
    assert rest == {"p3", "p4"}  # as of the first page: the change is not in this pull...
    changed = await search(client, f"Patient?_lastUpdated=gt{first['meta']['lastUpdated']}")
    assert _order(changed) == ["p1"]  # ...but in the next one, once
    assert changed["entry"][0]["resource"]["gender"] == "other"


async def test_counts_and_totals(client):
    await _store(client, PEOPLE)
    body = await search(client, "Patient?_count=2")
    assert len(_order(body)) == 2 and "total" not in body  # more pages: not counted unless asked
    assert (await search(client, "Patient"))["total"] == 7  # all on one page: free
    assert (await search(client, "Patient?_count=2&_total=accurate"))["total"] == 7
    assert (await search(client, "Patient?gender=male&_total=accurate"))["total"] == 2
    estimate = (await search(client, "Patient?_count=2&_total=estimate"))["total"]
    assert isinstance(estimate, int) and estimate >= 0
    assert "total" not in await search(client, "Patient?_total=none")
    counted = await search(client, "Patient?gender=female&_summary=count")
    assert counted["total"] == 5 and not counted.get("entry")
    zero = await search(client, "Patient?_count=0")
    assert zero["total"] == 7 and not zero.get("entry")
    assert len(_order(await search(client, "Patient?_count=5000"))) == 7  # clamped to the maximum, not refused


async def test_summary_and_elements_shape_the_matches(client):
    await _store(
        client,
        [{**PEOPLE[0], "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}}],
    )
    summary = (await search(client, "Patient?_summary=true"))["entry"][0]["resource"]
    assert "text" not in summary and summary["meta"]["tag"][0]["code"] == "SUBSETTED" and summary["birthDate"]
    text = (await search(client, "Patient?_summary=text"))["entry"][0]["resource"]
    assert "text" in text and "birthDate" not in text
    data = (await search(client, "Patient?_summary=data"))["entry"][0]["resource"]
    assert "text" not in data and "name" in data
    elements = (await search(client, "Patient?_elements=gender,birthDate"))["entry"][0]["resource"]
    assert set(elements) == {"resourceType", "id", "meta", "gender", "birthDate"}
    full = (await search(client, "Patient?_summary=false"))["entry"][0]["resource"]
    assert "text" in full and "name" in full


async def test_links_keep_only_what_was_understood(client):
    await _store(client, PEOPLE)
    body = await search(client, "Patient?gender=female&foo=bar&_count=2&_sort=family")
    self_link = _link(body, "self")
    assert dict(parse_qsl(urlsplit(self_link).query)) == {"gender": "female", "_count": "2", "_sort": "family"}
    assert "foo" not in _link(body, "next")
    matches = [e for e in body["entry"] if e["search"]["mode"] == "match"]
    assert all(e["fullUrl"] == f"{BASE}/fhir/Patient/{e['resource']['id']}" for e in matches)
    assert [e["search"]["mode"] for e in body["entry"]] == ["match", "match", "outcome"]


async def test_a_tampered_or_foreign_cursor_is_a_400(client):
    await _store(client, PEOPLE)
    body = await search(client, "Patient?_count=2&_sort=family")
    nxt = _link(body, "next")
    assert (await client.get(nxt.replace("_sort=family", "_sort=birthdate"))).status_code == 400
    assert (await client.get("/fhir/Patient?_cursor=not-a-cursor")).status_code == 400
    assert (await client.get("/fhir/Patient?_cursor=e30")).status_code == 400  # "{}"
