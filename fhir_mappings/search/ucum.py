"""UCUM canonical units for quantity search, as data: g/dL and g/L, kg and g, cm and mm compare alike.

Each UCUM code maps to (canonical code, factor, offset): canonical = value * factor + offset.
Only units Puente's programmes record are listed; any other UCUM code is its own canonical unit
(factor 1), so exact-unit searches still work. Factors are exact decimals from the UCUM definitions.
"""

from __future__ import annotations

from decimal import Decimal

from fhir_mappings.code_systems import UCUM

UCUM_SYSTEM = UCUM

_D = Decimal

UNITS: dict[str, tuple[str, Decimal, Decimal]] = {
    # mass -> g
    "kg": ("g", _D("1000"), _D(0)),
    "g": ("g", _D("1"), _D(0)),
    "mg": ("g", _D("0.001"), _D(0)),
    "ug": ("g", _D("0.000001"), _D(0)),
    "[lb_av]": ("g", _D("453.59237"), _D(0)),
    # length -> m
    "km": ("m", _D("1000"), _D(0)),
    "m": ("m", _D("1"), _D(0)),
    "cm": ("m", _D("0.01"), _D(0)),
    "mm": ("m", _D("0.001"), _D(0)),
    "[in_i]": ("m", _D("0.0254"), _D(0)),
    # mass concentration -> g/L (hemoglobin: g/dL x 10 = g/L)
    "g/L": ("g/L", _D("1"), _D(0)),
    "g/dL": ("g/L", _D("10"), _D(0)),
    "g/mL": ("g/L", _D("1000"), _D(0)),
    "mg/dL": ("g/L", _D("0.01"), _D(0)),
    "mg/L": ("g/L", _D("0.001"), _D(0)),
    "ug/L": ("g/L", _D("0.000001"), _D(0)),
    "ug/dL": ("g/L", _D("0.00001"), _D(0)),
    # substance concentration -> mol/L
    "mol/L": ("mol/L", _D("1"), _D(0)),
    "mmol/L": ("mol/L", _D("0.001"), _D(0)),
    "umol/L": ("mol/L", _D("0.000001"), _D(0)),
    # volume -> L
    "L": ("L", _D("1"), _D(0)),
    "dL": ("L", _D("0.1"), _D(0)),
    "mL": ("L", _D("0.001"), _D(0)),
    # pressure -> Pa (UCUM: m[Hg] = 133.3220 kPa)
    "Pa": ("Pa", _D("1"), _D(0)),
    "kPa": ("Pa", _D("1000"), _D(0)),
    "mm[Hg]": ("Pa", _D("133.3220"), _D(0)),
    # temperature -> K
    "K": ("K", _D("1"), _D(0)),
    "Cel": ("K", _D("1"), _D("273.15")),
    "[degF]": ("K", _D(5) / _D(9), _D("273.15") - _D(32) * _D(5) / _D(9)),
    # time -> s (UCUM: a = 365.25 d, mo = a/12)
    "s": ("s", _D("1"), _D(0)),
    "min": ("s", _D("60"), _D(0)),
    "h": ("s", _D("3600"), _D(0)),
    "d": ("s", _D("86400"), _D(0)),
    "wk": ("s", _D("604800"), _D(0)),
    "mo": ("s", _D("2629800"), _D(0)),
    "a": ("s", _D("31557600"), _D(0)),
}


def canonical_unit(code: str) -> str:
    return UNITS[code][0] if code in UNITS else code


def canonicalise(value: Decimal, code: str) -> Decimal:
    """`value` in `code` expressed in `canonical_unit(code)`; unknown units are returned unchanged."""
    unit = UNITS.get(code)
    if unit is None:
        return value
    _canonical, factor, offset = unit
    return value * factor + offset
