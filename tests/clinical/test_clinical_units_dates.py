"""Unit conversion and calendar arithmetic shared by the rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from clinical import UnitError, hemoglobin_to_g_per_l, length_to_cm, weight_to_kg
from clinical.dates import Period, add_months, age_in_days, completed_months, completed_years
from clinical.rulesets import available, load_json


def test_hemoglobin_units():
    assert hemoglobin_to_g_per_l("10.4", "g/dL") == Decimal("104.0")
    assert hemoglobin_to_g_per_l(104, "g/L") == Decimal(104)
    with pytest.raises(UnitError, match="ambiguous"):
        hemoglobin_to_g_per_l("6.5", "mmol/L")


def test_length_and_weight_units():
    assert length_to_cm(115, "mm") == Decimal("11.5")
    assert length_to_cm("0.755", "m") == Decimal("75.500")
    assert weight_to_kg(3250, "g") == Decimal("3.250")
    assert weight_to_kg("9.5", "kg") == Decimal("9.5")
    with pytest.raises(UnitError):
        length_to_cm(30, "[in_i]")
    with pytest.raises(UnitError):
        weight_to_kg(7, "[lb_av]")
    with pytest.raises(TypeError):
        weight_to_kg(True, "kg")
    with pytest.raises(ValueError):
        weight_to_kg(float("nan"), "kg")


def test_month_arithmetic_follows_cdsi():
    assert add_months(dt.date(2024, 1, 31), 1) == dt.date(2024, 3, 1)
    assert add_months(dt.date(2024, 2, 29), 12) == dt.date(2025, 3, 1)
    assert add_months(dt.date(2024, 11, 30), 2) == dt.date(2025, 1, 30)
    assert completed_months(dt.date(2024, 1, 31), dt.date(2024, 2, 29)) == 0
    assert completed_months(dt.date(2024, 1, 31), dt.date(2024, 3, 1)) == 1
    assert completed_months(dt.date(2024, 1, 15), dt.date(2024, 7, 14)) == 5
    assert completed_months(dt.date(2024, 1, 15), dt.date(2024, 7, 15)) == 6
    assert completed_years(dt.date(2009, 6, 1), dt.date(2024, 5, 31)) == 14
    assert completed_years(dt.date(2009, 6, 1), dt.date(2024, 6, 1)) == 15
    assert age_in_days(dt.date(2024, 1, 1), dt.date(2026, 1, 1)) == 731
    with pytest.raises(ValueError):
        completed_months(dt.date(2024, 1, 2), dt.date(2024, 1, 1))


def test_periods():
    period = Period.from_json({"months": 1, "weeks": 2})
    assert period.after(dt.date(2024, 1, 31)) == dt.date(2024, 3, 15)
    assert str(period) == "1 months 2 weeks"
    with pytest.raises(ValueError):
        Period.from_json({"fortnights": 1})


def test_rule_sets_are_discoverable_by_kind():
    assert available("anaemia") == ["WHO-2024"]
    assert available("growth") == ["WHO-2006"]
    assert load_json("anaemia", "WHO-2024")["name"] == "WHO-2024"
