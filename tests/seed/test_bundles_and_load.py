"""Household transaction Bundles and the storage-agnostic loaders."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from seed import Unit, generate_programme, generate_units, load, load_units, transaction_bundles


def test_bundles_are_small_valid_put_transactions_in_stream_order() -> None:
    bundles = list(transaction_bundles(generate_units(20, 3)))
    assert all(1 <= len(b["entry"]) <= 8 for b in bundles)
    flat = [e["resource"] for b in bundles for e in b["entry"]]
    assert flat == list(generate_programme(20, 3))
    for entry in bundles[-1]["entry"]:
        r = entry["resource"]
        assert entry["request"] == {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}
    get_fhir_model_class("Bundle").model_validate(bundles[-1])


async def test_load_writes_every_resource_in_order() -> None:
    written: list[dict[str, Any]] = []
    seen: list[int] = []

    async def writer(resource: dict[str, Any]) -> None:
        written.append(resource)

    count = await load(generate_programme(10, 2), writer, progress=seen.append, every=100)
    assert written == list(generate_programme(10, 2)) and count == len(written)
    assert seen[-1] == count


async def test_load_units_writes_the_programme_first_then_all_households() -> None:
    order: list[str] = []

    async def writer(unit: Unit) -> None:
        order.append(unit.kind)

    count = await load_units(generate_units(30, 2), writer, concurrency=3)
    assert order[0] == "programme" and order.count("programme") == 1
    assert count == sum(1 for _ in generate_programme(30, 2))
