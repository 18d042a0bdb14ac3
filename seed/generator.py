"""Deterministic synthetic La Esperanza CHW programme as a stream of FHIR R4 resources (dicts).

    for resource in generate_programme(children=1300, seed=7):
        ...

Resources are plain JSON-ready dicts (floats rounded to measurement precision) in dependency order:
the shared programme resources first, then household after household, each reference pointing to a
resource already yielded. Memory is constant in the cohort size. Nested values (codings, names,
addresses) may be shared between resources: copy before mutating anything but top-level keys.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from seed.household import HouseholdBuilder, Round, RunState
from seed.ids import IdFactory
from seed.programme import build_programme

Resource = dict[str, Any]

DEFAULT_CHILDREN = 1300  # the La Esperanza programme: >1,300 children under five
DEFAULT_SEED = 1
# Fixed, not today: the same seed must give the same bytes on any day. Pass `as_of` for fresh dates.
DEFAULT_AS_OF = date(2026, 11, 1)
DEFAULT_ROUNDS = 2  # two screening campaigns a year: one year of screening history
# Measured with the defaults (see tests/seed); used to size a cohort for a resource count.
RESOURCES_PER_CHILD = 32.1

# Campaign windows (month, day, length in days): twice a year, as the programme does.
CAMPAIGNS = ((4, 15, 30), (10, 1, 30))


@dataclass(frozen=True, slots=True)
class Unit:
    """A group of resources that only refer to each other and to earlier units.

    `kind` is "programme" for the shared resources (always the first unit) or "household".
    Households never refer to each other, so after the first unit they can load in any order.
    """

    kind: str
    resources: list[Resource]


def screening_rounds(as_of: date, count: int) -> tuple[Round, ...]:
    """The last `count` campaigns that started before `as_of`, oldest first."""
    found: list[Round] = []
    year = as_of.year
    while len(found) < count:
        for month, day, days in reversed(CAMPAIGNS):
            start = date(year, month, day).toordinal()
            if start < as_of.toordinal() and len(found) < count:
                found.append(Round(start, min(days, as_of.toordinal() - start)))
        year -= 1
    return tuple(reversed(found))


def generate_units(children: int = DEFAULT_CHILDREN, seed: int = DEFAULT_SEED, *,
                   as_of: date = DEFAULT_AS_OF, rounds: int = DEFAULT_ROUNDS,
                   stats: dict[str, int] | None = None) -> Iterator[Unit]:
    """The programme unit, then one unit per household until `children` children exist.

    `stats`, if given, is filled with counters (households, children, task states...) as units
    are produced.
    """
    if children < 0:
        raise ValueError("children must be >= 0")
    ids = IdFactory(seed)
    programme = build_programme(ids, random.Random(seed), as_of.toordinal())
    window = screening_rounds(as_of, rounds)
    state = RunState(
        ids=ids, programme=programme, as_of=as_of.toordinal(), rounds=window,
        window_start=min([r.start for r in window] + [as_of.toordinal() - 365]),
        stats=stats if stats is not None else {},
    )
    yield Unit("programme", programme.resources)
    made = 0
    index = 0
    while made < children:
        size = _household_size(seed, index)
        size = min(size, children - made)
        yield Unit("household", HouseholdBuilder(state, index, size).build())
        made += size
        index += 1


def _household_size(seed: int, index: int) -> int:
    # Its own stream, so the cohort size never changes what is inside earlier households.
    roll = random.Random(seed * 7_919 + index * 104_729).random()
    if roll < 0.08:
        return 0  # a first pregnancy: no children under five yet
    if roll < 0.08 + 0.92 * 0.66:
        return 1
    return 2 if roll < 0.08 + 0.92 * 0.95 else 3


def generate_programme(children: int = DEFAULT_CHILDREN, seed: int = DEFAULT_SEED, *,
                       as_of: date = DEFAULT_AS_OF, rounds: int = DEFAULT_ROUNDS,
                       stats: dict[str, int] | None = None) -> Iterator[Resource]:
    """Every resource of the programme, referenced resources before referrers."""
    for unit in generate_units(children, seed, as_of=as_of, rounds=rounds, stats=stats):
        yield from unit.resources


def children_for_resources(resources: int) -> int:
    """About how many children give `resources` resources with the default settings."""
    return max(1, round(resources / RESOURCES_PER_CHILD))
