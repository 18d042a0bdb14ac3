"""Stable resource ids and identifier numbers derived from the seed.

Ids are uuid5 of a per-seed namespace and a key describing the resource, so the same seed always
gives the same ids (resources can be PUT, reloaded and cross-referenced before they are stored) and
different seeds never collide.
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from seed.codes import SYNTHETIC_TAG

# Identifier numbers are a bijection of a person's serial number, so they never repeat within a
# run (identifier search must find one person) yet look random.
_DNI_MULTIPLIER = 73_939_133  # coprime with 10: a permutation of 0..10**8-1
_LONG_MULTIPLIER = 48_271  # coprime with 10: a permutation of 0..10**9-1
STAFF_SERIAL_BASE = 10**8 - 10_000  # serials of CHWs and supervisors, above every household's
PEOPLE_PER_HOUSEHOLD = 8  # serial slots reserved per household (mother + children)


class IdFactory:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._namespace = uuid5(NAMESPACE_URL, f"https://puente.example.org/seed/{seed}")
        self._sha1 = hashlib.sha1(self._namespace.bytes, usedforsecurity=False)
        self._offset = (seed * 2_654_435_761) % 10**8

    def __call__(self, key: str) -> str:
        # Same value as str(uuid5(namespace, key)), about three times faster (ids are ~1/3 of the
        # generator's time otherwise): hash from a copy of the pre-fed namespace, set version 5 and
        # the RFC 4122 variant by hand.
        h = self._sha1.copy()
        h.update(key.encode())
        b = bytearray(h.digest()[:16])
        b[6] = (b[6] & 0x0F) | 0x50
        b[8] = (b[8] & 0x3F) | 0x80
        x = b.hex()
        return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"

    def dni(self, serial: int) -> str:
        return f"{(serial * _DNI_MULTIPLIER + self._offset) % 10**8:08d}"

    def long_number(self, serial: int) -> str:
        return f"{(serial * _LONG_MULTIPLIER + self._offset) % 10**9:09d}"


def ref(resource_type: str, resource_id: str) -> dict[str, str]:
    return {"reference": f"{resource_type}/{resource_id}"}


def iso_date(ordinal: int) -> str:
    return date.fromordinal(ordinal).isoformat()


def iso_datetime(ordinal: int, minute_of_day: int) -> str:
    # Peru has no daylight saving time: -05:00 all year.
    hours, minutes = divmod(minute_of_day, 60)
    return f"{date.fromordinal(ordinal).isoformat()}T{hours:02d}:{minutes:02d}:00-05:00"


def new_meta() -> dict[str, Any]:
    return {"tag": [dict(SYNTHETIC_TAG)]}
