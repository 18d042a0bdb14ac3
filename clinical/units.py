"""UCUM unit conversion for the measurements the rules read. Exact decimal arithmetic.

Unknown units are refused with `UnitError`: a silently misread unit is a wrong diagnosis.
UCUM codes are case-sensitive, so "g/dl" is not "g/dL".
"""

from __future__ import annotations

from decimal import Decimal

Number = Decimal | int | float | str


class UnitError(ValueError):
    """A quantity arrived in a unit the rule cannot use."""


def to_decimal(value: Number) -> Decimal:
    """Decimal from a number; floats go through str() so 10.4 stays 10.4, not 10.4000000000000003."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not a quantity")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, float):
        result = Decimal(repr(value))
    else:
        result = Decimal(value)
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


_HB_TO_G_PER_L = {"g/L": Decimal(1), "g/dL": Decimal(10)}
_LENGTH_TO_CM = {"cm": Decimal(1), "mm": Decimal("0.1"), "m": Decimal(100)}
_WEIGHT_TO_KG = {"kg": Decimal(1), "g": Decimal("0.001")}


def hemoglobin_to_g_per_l(value: Number, unit: str) -> Decimal:
    """Hemoglobin concentration in g/L from a UCUM unit "g/dL" or "g/L"."""
    factor = _HB_TO_G_PER_L.get(unit)
    if factor is None:
        if unit in ("mmol/L", "mmol/l"):
            # The g<->mmol factor depends on whether the lab counts the Hb monomer (x1.611 g/dL per
            # mmol/L) or the tetramer (x6.445); guessing wrongly misclassifies by a factor of four.
            raise UnitError(
                "hemoglobin in mmol/L is not accepted (monomer vs tetramer basis is ambiguous); "
                "send g/dL or g/L"
            )
        raise UnitError(f"hemoglobin unit {unit!r} is not supported; use UCUM 'g/dL' or 'g/L'")
    return to_decimal(value) * factor


def length_to_cm(value: Number, unit: str) -> Decimal:
    """Length in cm from UCUM "cm", "mm" or "m"."""
    factor = _LENGTH_TO_CM.get(unit)
    if factor is None:
        raise UnitError(f"length unit {unit!r} is not supported; use UCUM 'cm', 'mm' or 'm'")
    return to_decimal(value) * factor


def weight_to_kg(value: Number, unit: str) -> Decimal:
    """Body weight in kg from UCUM "kg" or "g"."""
    factor = _WEIGHT_TO_KG.get(unit)
    if factor is None:
        raise UnitError(f"weight unit {unit!r} is not supported; use UCUM 'kg' or 'g'")
    return to_decimal(value) * factor
