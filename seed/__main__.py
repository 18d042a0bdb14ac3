"""Write the synthetic programme as NDJSON (or transaction Bundles) and report the generator's speed.

    uv run python -m seed --children 1300 --seed 1 --out programme.ndjson
    uv run python -m seed --children 300000 --out /dev/null      # speed only
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import date

from fhir_mappings.fhir_json import dumps
from seed.bundles import transaction_bundles
from seed.generator import (
    DEFAULT_AS_OF,
    DEFAULT_CHILDREN,
    DEFAULT_ROUNDS,
    DEFAULT_SEED,
    Unit,
    generate_units,
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m seed", description=__doc__.splitlines()[0])
    p.add_argument("--children", type=int, default=DEFAULT_CHILDREN)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--as-of", type=date.fromisoformat, default=DEFAULT_AS_OF, help="YYYY-MM-DD")
    p.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="screening campaigns of history")
    p.add_argument("--out", default="-", help="file, or - for stdout")
    p.add_argument("--bundles", type=int, default=0, metavar="N",
                   help="write transaction Bundles of N entries (one per line) instead of resources")
    args = p.parse_args(argv)

    stats: dict[str, int] = {}
    units = generate_units(args.children, args.seed, as_of=args.as_of, rounds=args.rounds, stats=stats)
    counts: Counter[str] = Counter()
    out = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")  # noqa: SIM115
    started = time.perf_counter()
    try:
        if args.bundles:
            for bundle in transaction_bundles(_counting(units, counts), args.bundles):
                out.write(dumps(bundle) + b"\n")
        else:
            for unit in _counting(units, counts):
                for resource in unit.resources:
                    out.write(dumps(resource) + b"\n")
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    seconds = time.perf_counter() - started
    total = sum(counts.values())
    sys.stderr.write(f"{total:,} resources for {stats.get('children', 0):,} children in {seconds:.1f}s "
                     f"({total / seconds:,.0f} resources/s, serialised)\n")
    for resource_type, n in counts.most_common():
        sys.stderr.write(f"  {resource_type:<20} {n:>10,}\n")
    return 0


def _counting(units: Iterable[Unit], counts: Counter[str]) -> Iterator[Unit]:
    for unit in units:
        counts.update(r["resourceType"] for r in unit.resources)
        yield unit


if __name__ == "__main__":
    raise SystemExit(main())
