"""Version stamps and watermarks (storage.clock), at the repository: what a poll may trust.

A watermark W read while a write transaction is open comes before everything that transaction
stamps; read after it committed, it comes after; no version is ever stamped exactly at a watermark.
"""

from __future__ import annotations

import asyncio

from storage import clock
from storage.database import transaction

PATIENT = {"resourceType": "Patient", "gender": "female"}


async def _watermark(engine):
    async with transaction(engine, write=False) as connection:
        return await clock.watermark(connection)


async def test_an_open_write_holds_the_watermark_back_until_it_commits(engine, repository_in, backend):
    async with repository_in(write=True) as first:
        done = await first.create(dict(PATIENT))
    before = await _watermark(engine)
    assert before > done.version.last_updated  # committed: at or before W
    if backend == "sqlite":
        # One writer at a time: a reader's watermark is after the last commit, and the next writer
        # stamps after it whatever the wall clock says.
        async with repository_in(write=True) as writer:
            stamped = (await writer.create(dict(PATIENT))).version.last_updated
        assert stamped > before
        return
    open_write = asyncio.Event()
    release = asyncio.Event()
    stamped = []

    async def long_write() -> None:
        async with repository_in(write=True) as writer:
            await asyncio.sleep(0.05)  # the lease is taken when the transaction begins, before any stamp
            stamped.append((await writer.create(dict(PATIENT))).version.last_updated)
            open_write.set()
            await release.wait()

    task = asyncio.create_task(long_write())
    await open_write.wait()
    async with repository_in(write=True) as quick:  # a later, shorter write commits first
        quick_stamp = (await quick.create(dict(PATIENT))).version.last_updated
    during = await _watermark(engine)
    assert during < stamped[0] and during < quick_stamp  # held behind the open transaction
    release.set()
    await task
    after = await _watermark(engine)
    assert after > max(stamped[0], quick_stamp)


async def test_watermarks_fall_between_stamps(engine, repository_in):
    async with repository_in(write=True) as writer:
        stamp = (await writer.create(dict(PATIENT))).version.last_updated
    assert stamp.microsecond % 1000 == 0  # stamps on whole milliseconds
    watermark = await _watermark(engine)
    assert watermark.microsecond % 1000 == 500  # watermarks half-way between two
    assert clock.fhir_watermark(watermark).endswith("5Z")


async def test_a_search_inside_a_write_sees_its_own_writes(engine, repository_in, backend):
    """Its stamps are rounded up to the millisecond, ahead of the clock: a watermark taken right
    after them (a fast create is well under a millisecond) must still be past them."""
    for _ in range(20):
        async with repository_in(write=True) as writer:
            created = await writer.create(dict(PATIENT))
            inside = await clock.watermark(writer.connection)  # its own lease is left out
            assert inside > created.version.last_updated
            again = await writer.create(dict(PATIENT))
            assert await clock.watermark(writer.connection) > again.version.last_updated
