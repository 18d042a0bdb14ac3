"""Switches of the clinical integration: PUENTE_CLINICAL_HOOKS and PUENTE_DEFAULT_ALTITUDE_M.

`from_settings` is what the app uses; `from_env` reads the same variables from a plain mapping.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from settings import Settings

_ON = {"on", "true", "1", "yes"}
_OFF = {"off", "false", "0", "no"}


@dataclass(frozen=True)
class ClinicalConfig:
    hooks_enabled: bool = True  # derive interpretation, z-scores, flags and referral drafts on write
    default_altitude_m: Decimal = Decimal(0)  # when the patient's Location has no altitude

    @classmethod
    def from_settings(cls, settings: Settings) -> ClinicalConfig:
        return cls(hooks_enabled=settings.clinical_hooks, default_altitude_m=settings.default_altitude_m)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClinicalConfig:
        env = os.environ if environ is None else environ
        return cls(hooks_enabled=hooks_enabled(env), default_altitude_m=default_altitude_m(env))


def hooks_enabled(environ: Mapping[str, str]) -> bool:
    raw = environ.get("PUENTE_CLINICAL_HOOKS", "on").strip().lower()
    if raw in _ON:
        return True
    if raw in _OFF:
        return False
    raise ValueError(f"PUENTE_CLINICAL_HOOKS={raw!r}: use 'on' or 'off'")


def default_altitude_m(environ: Mapping[str, str]) -> Decimal:
    raw = environ.get("PUENTE_DEFAULT_ALTITUDE_M", "0").strip()
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"PUENTE_DEFAULT_ALTITUDE_M={raw!r} is not a number of metres") from None
    if not value.is_finite():
        raise ValueError(f"PUENTE_DEFAULT_ALTITUDE_M={raw!r} is not a number of metres")
    return value
