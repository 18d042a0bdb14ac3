"""Ways to get the generated programme into the Puente under test.

- `http`: household transaction Bundles (PUT with the generator's ids) over the FHIR API, several
  households in flight. Works against any FHIR server; also measures the transaction path.
- `module:function`: a loader the project provides, called as
  `await function(units, database_url)` (or without `await` if it is synchronous) while the
  server is up; `units` is an iterator of `seed.Unit` in dependency order. Use it for fast bulk
  loads through the repository (e.g. what `puente seed-demo` uses).
"""

from __future__ import annotations

import importlib
import inspect
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from fhir_mappings.fhir_json import dumps
from seed import Unit, load_units, unit_bundles

LoaderFn = Callable[[Iterable[Unit], str], Any]


class LoadFailed(RuntimeError):
    pass


def _progress(total_hint: int) -> Callable[[int], None]:
    started = time.monotonic()
    last = [0.0]

    def report(done: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 5 or done >= total_hint:
            last[0] = now
            rate = done / max(now - started, 1e-9)
            sys.stderr.write(f"  loaded {done:,}/{total_hint:,} resources ({rate:,.0f}/s)\n")

    return report


async def http_load(base_url: str, units: Iterable[Unit], *, total_hint: int, bundle_entries: int = 100,
                    concurrency: int = 4) -> int:
    async with httpx.AsyncClient(base_url=base_url, timeout=120.0,
                                 limits=httpx.Limits(max_connections=concurrency + 1)) as client:

        async def write(unit: Unit) -> None:
            for bundle in unit_bundles(unit, bundle_entries):
                response = await client.post("/fhir", content=dumps(bundle),
                                             headers={"Content-Type": "application/fhir+json"})
                if response.status_code != 200:
                    raise LoadFailed(f"transaction -> {response.status_code}: {response.text[:1000]}")

        return await load_units(units, write, concurrency=concurrency, progress=_progress(total_hint))


def import_loader(spec: str) -> LoaderFn:
    module, _, name = spec.partition(":")
    if not name:
        raise SystemExit(f"--loader must be 'http' or 'module:function', not {spec!r}")
    fn = getattr(importlib.import_module(module), name)
    return fn  # type: ignore[no-any-return]


async def call_loader(fn: LoaderFn, units: Iterable[Unit], database_url: str) -> None:
    result = fn(units, database_url)
    if inspect.isawaitable(result):
        await result
