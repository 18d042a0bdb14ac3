"""Load generated resources through any async writer (the repository, an HTTP client, a file...).

Storage-agnostic on purpose: `puente seed-demo` passes a writer that goes through the repository,
the benchmark passes one that PUTs over HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from seed.generator import Unit

Resource = dict[str, Any]
Writer = Callable[[Resource], Awaitable[Any]]
Progress = Callable[[int], None]


async def load(resources: Iterable[Resource], writer: Writer, *, progress: Progress | None = None,
               every: int = 1000) -> int:
    """Write each resource in order (the stream is in dependency order); returns how many.

    `progress(n)` is called with the number written so far every `every` resources and at the end.
    """
    count = 0
    for resource in resources:
        await writer(resource)
        count += 1
        if progress and count % every == 0:
            progress(count)
    if progress:
        progress(count)
    return count


async def load_units(units: Iterable[Unit], writer: Callable[[Unit], Awaitable[Any]], *,
                     concurrency: int = 4, progress: Progress | None = None) -> int:
    """Write whole units, the first (shared programme) alone, then `concurrency` households at a time.

    Households never refer to each other, so they may be written in parallel once the programme
    unit is in. Returns the number of resources written.
    """
    it = iter(units)
    first = next(it, None)
    if first is None:
        return 0
    await writer(first)
    done = len(first.resources)
    if progress:
        progress(done)
    pending: set[asyncio.Future[Any]] = set()
    sizes: dict[asyncio.Future[Any], int] = {}

    async def drain(limit: int) -> None:
        nonlocal done
        while len(pending) > limit:
            finished, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                pending.discard(task)
                task.result()  # re-raise the first failure
                done += sizes.pop(task)
            if progress:
                progress(done)

    for unit in it:
        task = asyncio.ensure_future(writer(unit))
        pending.add(task)
        sizes[task] = len(unit.resources)
        await drain(concurrency - 1)
    await drain(0)
    return done
