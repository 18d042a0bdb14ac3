"""The committed thinned growth table is exactly what `seed.derive_growth` makes from WHO's tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from seed import growth
from seed.derive_growth import render
from tests.fixtures.reference_data import WHO_GROWTH

COMMITTED = Path(growth.__file__).with_name("growth_lms.py")


def test_committed_table_is_derived_from_the_who_tables() -> None:
    assert COMMITTED.read_text() == render(WHO_GROWTH)


def test_median_child_has_the_who_median() -> None:
    assert growth.length_cm(1, 0, 0.0) == pytest.approx(49.8842)
    assert growth.length_cm(2, 365, 0.0) == pytest.approx(74.0, abs=0.1)
    assert growth.weight_kg(1, 300, 70.0, 0.0) == pytest.approx(8.4227)  # wflanthro: boys, 70 cm
    assert growth.length_cm(1, 400, -2.0) < growth.length_cm(1, 400, 0.0)
