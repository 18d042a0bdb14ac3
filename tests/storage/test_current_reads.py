"""Every hot read written twice (SQLAlchemy, and the asyncpg twin PostgreSQL runs for the rules)
answers alike: the same versions, in the same order, for the same parameters. On SQLite, a read of
fixed text runs compiled on the sqlite3 connection in a writer's turn (storage.sqlite_sql): it
answers as SQLAlchemy's execution of it does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from storage import current_reads
from storage.driver_sql import fetch


def _observation(oid: str, patient: str, when: str, code: str = "29463-7") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": when,
            "valueQuantity": {"value": 9.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}


def _cases() -> list[tuple[str, current_reads.CurrentRead, dict[str, Any], list[str]]]:
    day = ("date", datetime(2025, 3, 2, tzinfo=UTC), datetime(2025, 3, 3, tzinfo=UTC))
    referring = {"resource_type": "Observation", "param": "subject", "target_type": "Patient"}
    return [
        ("by ids", current_reads.BY_IDS, {"resource_type": "Patient", "ids": ["ana", "beto", "nobody"]},
         ["ana", "beto"]),
        ("by keys", current_reads.BY_KEYS,
         {"keys": [("Patient", "ana"), ("Observation", "a1"), ("Observation", "x1"), ("Patient", "a1"),
                   ("Patient", "nobody")],
          "types": ["Patient", "Observation", "Observation", "Patient", "Patient"],
          "ids": ["ana", "a1", "x1", "a1", "nobody"]}, ["a1", "x1", "ana"]),
        ("locked by ids", current_reads.LOCKED_BY_IDS, {"resource_type": "Patient", "ids": ["gone", "ana", "x"]},
         ["ana", "gone"]),
        ("by one id", current_reads.BY_ONE_ID, {"resource_type": "Patient", "ids": ["gone"], "id": "gone"},
         ["gone"]),
        ("referring to one", current_reads.referring(True, False),
         {**referring, "target_ids": ["ana"], "target_id": "ana"}, ["a1", "a2", "h1"]),
        ("referring to several", current_reads.referring(False, False),
         {**referring, "target_ids": ["ana", "beto"], "target_id": "ana"}, ["a1", "a2", "b1", "h1"]),
        ("referring with a code", current_reads.referring(True, False, 1),
         {**referring, "target_ids": ["ana"], "target_id": "ana", **_codes("8302-2")}, ["h1"]),
        ("referring to several with codes", current_reads.referring(False, False, 2),
         {**referring, "target_ids": ["ana", "beto"], "target_id": "ana", **_codes("29463-7", "718-7")},
         ["a1", "a2", "b1"]),
        ("referring on a day with a code", current_reads.referring(True, True, 1),
         {**referring, "target_ids": ["ana"], "target_id": "ana", **_codes("8302-2"),
          "date_param": day[0], "date_from": day[1], "date_before": day[2]}, ["h1"]),
        ("referring on a day", current_reads.referring(True, True),
         {**referring, "target_ids": ["ana"], "target_id": "ana",
          "date_param": day[0], "date_from": day[1], "date_before": day[2]}, ["a1", "h1"]),
        ("greatest by token", current_reads.greatest_by_token(2, 5),
         {"resource_type": "Observation", "param": "code", "key0": "29463-7", "key1": "8302-2"},
         ["a1", "a2", "b1", "h1"]),
    ]


def _codes(*codes: str) -> dict[str, str]:
    """(system, code) pairs as `referring` names them."""
    return {name: value for i, code in enumerate(codes)
            for name, value in ((f"code_system{i}", "http://loinc.org"), (f"code{i}", code))}


# Reads whose SQL text depends on their values (an expanding IN list): SQLAlchemy renders them each time.
_VALUES_IN_THE_TEXT = {"by ids", "by keys", "locked by ids", "referring to several", "referring to several with codes"}


async def test_each_read_and_its_driver_twin_answer_alike(repository_in, backend) -> None:
    async with repository_in(write=True) as repository:
        for pid in ("ana", "beto", "gone"):
            await repository.update("Patient", pid, {"resourceType": "Patient", "id": pid})
        await repository.delete("Patient", "gone")
        for oid, pid, when in (("a1", "ana", "2025-03-02"), ("a2", "ana", "2025-04-01"), ("b1", "beto", "2025-03-02"),
                               ("x1", "ana", "2025-03-02")):
            await repository.update("Observation", oid, _observation(oid, pid, when))
        await repository.update("Observation", "h1", _observation("h1", "ana", "2025-03-02", "8302-2"))
        await repository.delete("Observation", "x1")  # deleted: no longer refers to anyone
    async with repository_in(write=True) as repository:  # one of them takes row locks
        connection = repository.connection
        for name, read, params, expected in _cases():
            through_sqlalchemy = [current_reads.version_from_row(row)
                                  for row in await connection.execute(read.sql, params)]
            assert [v.id for v in through_sqlalchemy] == expected, name
            if backend == "postgres":
                records = await fetch(connection, read.driver, params)
                through_driver = [current_reads.version_from_record(r) for r in records]
                assert through_driver == through_sqlalchemy, name
            # and the way the repository runs it: the asyncpg twin on PostgreSQL; on SQLite the
            # compiled form where its text is fixed, SQLAlchemy's execution where it is not
            if backend == "sqlite":
                assert (read.sqlite is None) == (name in _VALUES_IN_THE_TEXT), name
            assert await current_reads.select_current(connection, read, [], params) == through_sqlalchemy, name
            keyed = await current_reads.select_current_keyed(connection, read, [], params)
            assert [version for _, version in keyed] == through_sqlalchemy, name
            assert len({pk for pk, _ in keyed}) == len(keyed), name
