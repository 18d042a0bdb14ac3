"""The rules read a bounded number of rows per write, whatever the child's day holds.

A weight for a child with a crowded day (many weights, many vitals no rule reads) costs the rules
the same statements and the same rows as one for a child whose day holds one of each: they read the
day's latest measurement of each kind and the evidence already cited, never the whole day.
Counted where every current-version read goes (storage.current_reads.select_current), on both
databases. Speed is measured in bench/ only.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from fhir_mappings import fhir_json
from storage import current_reads
from tests.clinical_api.resources import FHIR_JSON, WEIGHT, get, observation, patient, put

HEART_RATE = "8867-4"
DAY = "2025-03-02"


async def _crowd(client, pid: str, count: int) -> None:
    """`count` weights and `count` heart rates for the child on DAY, in one transaction."""
    entries = []
    for n in range(count):
        when = f"{DAY}T{8 + n // 60:02d}:{n % 60:02d}:00Z"
        pair = ((f"{pid}-w{n}", WEIGHT, "8.10", "kg"), (f"{pid}-hr{n}", HEART_RATE, 120, "/min"))
        for oid, code, value, unit in pair:
            entries.append({"resource": observation(oid, pid, code, value, unit, when),
                            "request": {"method": "PUT", "url": f"Observation/{oid}"}})
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    r = await client.post("/fhir", content=fhir_json.dumps(bundle), headers=FHIR_JSON)
    assert r.status_code == 200, r.text


async def _reads_of_one_weight(client, monkeypatch, pid: str, oid: str) -> tuple[int, int]:
    """(statements, rows) the current-version reads cost while one new weight is written."""
    counted = {"statements": 0, "rows": 0}
    original = current_reads.select_current

    async def counting(connection, read, conditions, params):
        found = await original(connection, read, conditions, params)
        counted["statements"] += 1
        counted["rows"] += len(found)
        return found

    monkeypatch.setattr(current_reads, "select_current", counting)
    try:
        await put(client, observation(oid, pid, WEIGHT, "8.30", "kg", f"{DAY}T20:00:00Z"))
    finally:
        monkeypatch.setattr(current_reads, "select_current", original)
    return counted["statements"], counted["rows"]


async def test_a_crowded_day_costs_the_rules_no_more_reads(client, monkeypatch):
    for pid, count in (("quiet", 1), ("busy", 120)):
        await put(client, patient(pid))
        await _crowd(client, pid, count)
    quiet = await _reads_of_one_weight(client, monkeypatch, "quiet", "quiet-new")
    busy = await _reads_of_one_weight(client, monkeypatch, "busy", "busy-new")
    assert busy == quiet
    assert busy[1] <= 12  # the Patient, the previous latest weight, a few derived resources
    # And the answer is the same as judging the whole day: the newest weight counts, alone.
    for pid in ("quiet", "busy"):
        assert (await get(client, f"Observation/{pid}-new-wfa"))["derivedFrom"] == [
            {"reference": f"Observation/{pid}-new"}]
        last = 0 if pid == "quiet" else 119
        assert await get(client, f"Observation/{pid}-w{last}-wfa") is None


@pytest.mark.parametrize("first, second", [
    ("2025-03-02T15:00:00-05:00", "2025-03-02T09:00:00-05:00"),  # written out of order
    ("2025-03-02", "2025-03-02T10:00:00Z"),  # a longer timestamp sorts after its prefix
    ("2025-03-02T10:00:00Z", "2025-03-02T10:00:00.5Z"),  # the raw text decides, as it always did
])
async def test_the_latest_taken_counts_whatever_the_order_written(client, first, second):
    await put(client, patient("kid"))
    await put(client, observation("a", "kid", WEIGHT, "8.10", "kg", first))
    await put(client, observation("b", "kid", WEIGHT, "8.20", "kg", second))
    latest, other = ("a", "b") if (first, "a") > (second, "b") else ("b", "a")
    z = await get(client, f"Observation/{latest}-wfa")
    assert z is not None and Decimal(str(z["valueQuantity"]["value"])) is not None
    assert await get(client, f"Observation/{other}-wfa") is None
