"""The write path's two forms store the same rows: the plain SQLAlchemy statements and, against them,
PostgreSQL's one-statement asyncpg form or SQLite's prebuilt statements for new resources
(storage.sqlite_writes), and a third: new resources created by the statement that also records
other versions. The same creates, updates and deletions go through each form in turn; the current
rows, history rows, index rows and deletion tombstones they leave are compared, keyed by resource
instead of by surrogate key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from storage import version_writes
from storage.tables import SEARCH_TABLES, deleted_reference, resource_history, resources
from storage.version_writes import Authorship, VersionWrite
from storage.versions import StoredVersion
from tests.fixtures.databases import empty_all_tables

BY = Authorship(author="Practitioner/chw-1", client="chw-app", user="rosa")
T0 = datetime(2025, 3, 2, 10, tzinfo=UTC)


def _resources() -> list[dict[str, Any]]:
    return [
        {"resourceType": "Patient", "id": "ana", "birthDate": "2023-01-05", "gender": "female",
         "name": [{"family": "Quispe", "given": ["Ana"]}], "managingOrganization": {"reference": "Organization/cs"},
         "identifier": [{"system": "https://puente.example.org/fhir/sid/pe-dni", "value": "45871236"}]},
        {"resourceType": "Observation", "id": "hb", "status": "final",
         "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
         "subject": {"reference": "Patient/ana"}, "effectiveDateTime": "2025-03-02",
         "valueQuantity": {"value": 10.40, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL"}},
    ]


def _weight() -> dict[str, Any]:
    return {"resourceType": "Observation", "id": "w", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "subject": {"reference": "Patient/ana"}, "effectiveDateTime": "2025-03-02",
            "valueQuantity": {"value": 11.2, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}


async def _write_everything(connection: Any, form: str) -> None:
    """`form`: "plain" (SQLAlchemy), "driver" (the fast form), "together" (the fast form, with the
    update and the deletion recorded by the statement that creates the third resource); "one by
    one" and "together, one" as those two, each version of an existing resource recorded alone (its
    pk a scalar: the form of a single update or deletion, and of the z-score the rules undo)."""
    through_driver = {"plain": False, "driver": True, "together": None, "one by one": True, "together, one": None}[form]
    items = []
    for n, resource in enumerate(_resources()):
        version = version_writes.new_version(resource, resource["id"], 1, T0 + timedelta(milliseconds=n), method="POST")
        items.append((version, resource))
    pks = await version_writes.insert_new(connection, items, BY, through_driver=through_driver)
    assert set(pks) == {("Patient", "ana"), ("Observation", "hb")}
    # a new version of the Observation (another value), then the deletion of the Patient
    changed = {**_resources()[1], "valueQuantity": {"value": 9.1, "unit": "g/dL"}}
    second = version_writes.new_version(changed, "hb", 2, T0 + timedelta(seconds=1), method="PUT")
    deletion = StoredVersion("Patient", "ana", 2, T0 + timedelta(seconds=2), True, None, method="DELETE")
    writes = [VersionWrite(pks[("Observation", "hb")], second, changed, fresh=False),
              VersionWrite(pks[("Patient", "ana")], deletion, None, fresh=False)]
    third = [(version_writes.new_version(_weight(), "w", 1, T0 + timedelta(seconds=3), method="POST"), _weight())]
    if form == "together":
        assert set(await version_writes.insert_new(connection, third, BY, then_store=writes)) == {("Observation", "w")}
        return
    if form == "together, one":
        await version_writes.store_many(connection, writes[:1], BY)
        assert set(await version_writes.insert_new(connection, third, BY, then_store=writes[1:])) == {
            ("Observation", "w")}
        return
    if form == "one by one":
        for write in writes:
            await version_writes.store_many(connection, [write], BY, through_driver=True)
        await version_writes.insert_new(connection, third, BY, through_driver=True)
        return
    await version_writes.store_many(connection, writes, BY, through_driver=through_driver)
    await version_writes.insert_new(connection, third, BY, through_driver=through_driver)


async def _snapshot(connection: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the writes left, with each surrogate key replaced by its resource's (type, id)."""
    keys = {row.pk: (row.resource_type, row.id) for row in await connection.execute(select(resources))}

    def rows(result: Any, pk_column: str) -> list[tuple[Any, ...]]:
        out = []
        for row in result.mappings():
            values = {k: v for k, v in row.items() if k not in ("pk", pk_column)}
            out.append((keys[row[pk_column]], tuple(sorted(values.items(), key=lambda kv: kv[0]))))
        return sorted(out, key=repr)

    snapshot = {
        "resources": rows(await connection.execute(select(resources)), "pk"),
        "history": rows(await connection.execute(select(resource_history)), "resource_pk"),
        "tombstones": rows(await connection.execute(select(deleted_reference)), "resource_pk"),
    }
    for kind, table in SEARCH_TABLES.items():
        snapshot[kind] = rows(await connection.execute(select(table)), "resource_pk")
    return snapshot


async def test_both_forms_of_the_write_path_store_the_same_rows(engine, database_url, backend) -> None:
    from storage.database import transaction

    forms = ["plain", "driver", "together", "one by one", "together, one"]
    snapshots = []
    for form in forms:
        await empty_all_tables(database_url)
        async with transaction(engine, write=True) as connection:
            await _write_everything(connection, form)
        async with transaction(engine, write=False) as connection:
            snapshots.append(await _snapshot(connection))
    plain = snapshots[0]
    # what any form must leave: three resources, five history rows (three creates, an update, a
    # deletion), no index rows for the deleted Patient, the hemoglobin indexed by its second value
    assert len(plain["resources"]) == 3 and len(plain["history"]) == 5
    assert sorted(key for key, _ in plain["quantity"]) == [("Observation", "hb"), ("Observation", "w")]
    assert not [key for key, _ in plain["token"] if key == ("Patient", "ana")]
    assert [key for key, _ in plain["tombstones"]] == [("Patient", "ana")]  # its managingOrganization
    for other in snapshots[1:]:
        assert other == plain
