"""Read-only access to the committed WHO LMS tables in clinical/data/growth/."""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources

TABLE_NAMES = ("wfa", "lhfa", "wfl", "wfh", "bfa", "hcfa", "acfa")
SEX_CODES = {"male": 1, "female": 2}

LMS = tuple[float, float, float]


@dataclass(frozen=True)
class LmsTable:
    """One WHO table; keys are whole days, or tenths of a centimetre for wfl/wfh."""

    name: str
    key_column: str
    first_key: int
    rows: dict[int, tuple[LMS, ...]]  # sex code -> rows from first_key, contiguous

    @property
    def by_length(self) -> bool:
        return self.key_column != "age_days"

    def row(self, sex: int, key: int) -> LMS | None:
        rows = self.rows[sex]
        index = key - self.first_key
        if 0 <= index < len(rows):
            return rows[index]
        return None

    @property
    def last_key(self) -> int:
        return self.first_key + len(self.rows[1]) - 1


def _key(text: str, by_length: bool) -> int:
    value = Decimal(text)
    scaled = value * 10 if by_length else value
    if scaled != scaled.to_integral_value():
        raise ValueError(f"table key {text} is not on the table's grid")
    return int(scaled)


@functools.cache
def load_table(name: str) -> LmsTable:
    if name not in TABLE_NAMES:
        raise KeyError(f"unknown growth table {name!r}")
    text = (resources.files("clinical") / "data" / "growth" / f"{name}.csv").read_text(encoding="ascii")
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    key_column = header[1]
    by_length = key_column != "age_days"
    collected: dict[int, list[tuple[int, LMS]]] = {1: [], 2: []}
    for sex_text, key, lv, mv, sv in reader:
        collected[int(sex_text)].append((_key(key, by_length), (float(lv), float(mv), float(sv))))
    first_key = collected[1][0][0]
    rows: dict[int, tuple[LMS, ...]] = {}
    for sex, entries in collected.items():
        keys = [k for k, _ in entries]
        if keys != list(range(first_key, first_key + len(keys))):
            raise ValueError(f"growth table {name}: keys for sex {sex} are not contiguous")
        rows[sex] = tuple(lms for _, lms in entries)
    if len(rows[1]) != len(rows[2]):
        raise ValueError(f"growth table {name}: sexes have different row counts")
    return LmsTable(name=name, key_column=key_column, first_key=first_key, rows=rows)
