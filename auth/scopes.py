"""SMART on FHIR clinical scopes, v1 (`.read`, `.write`, `.*`) and v2 (`.cruds`), parsed once.

SMART App Launch 2 "Scopes for requesting clinical data": v2 permissions are an in-order subset of
`cruds`; v1 `.read` means `.rs`, `.write` means `.cud` and `.*` means `.cruds`. A scope with
undefined or out-of-order letters (`.dus`) is not a scope: it grants nothing.

v2 scopes narrowed by search parameters (`patient/Observation.rs?category=...`) are recognised but
grant nothing here: the token endpoint does not issue them, and a token carrying one gets no access
from it. Refusing is the safe reading the specification allows ("MAY be ignored").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CONTEXTS = ("patient", "user", "system")
LETTERS = "cruds"
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE = re.compile(
    r"^(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]{1,63})\.(?P<perms>[^?]+)(?P<query>\?.*)?$"
)
_V2_PERMS = re.compile(r"^c?r?u?d?s?$")

# Scopes that are not about clinical data but that a SMART client may ask for.
OFFLINE_ACCESS = "offline_access"
ONLINE_ACCESS = "online_access"
NON_CLINICAL = frozenset({OFFLINE_ACCESS, ONLINE_ACCESS, "openid", "fhirUser", "profile", "launch", "launch/patient"})


@dataclass(frozen=True, slots=True)
class ClinicalScope:
    context: str  # patient | user | system
    resource_type: str  # a FHIR type, or "*"
    permissions: frozenset[str]  # letters of "cruds"
    restricted: bool = False  # a v2 scope narrowed by "?param=value": recognised, never honoured

    def grants(self, resource_type: str, letter: str) -> bool:
        return (
            not self.restricted
            and letter in self.permissions
            and self.resource_type in ("*", resource_type)
        )

    def covers(self, other: ClinicalScope) -> bool:
        """Does this scope grant at least everything `other` asks for (same context)?"""
        return (
            self.context == other.context
            and not self.restricted
            and self.resource_type in ("*", other.resource_type)
            and other.permissions <= self.permissions
        )

    def text(self) -> str:
        """The v2 form: `context/Type.letters`, letters in `cruds` order."""
        letters = "".join(c for c in LETTERS if c in self.permissions)
        return f"{self.context}/{self.resource_type}.{letters}"


def parse_scope(text: str) -> ClinicalScope | None:
    """A clinical scope, or None for anything else (non-clinical scopes, typos, bad letters)."""
    m = _SCOPE.match(text)
    if m is None:
        return None
    perms = m["perms"]
    letters = _V1.get(perms)
    if letters is None:
        if not perms or not _V2_PERMS.match(perms):
            return None
        letters = perms
    return ClinicalScope(m["context"], m["type"], frozenset(letters), restricted=m["query"] is not None)


def split_scopes(scope: str | None) -> list[str]:
    return [s for s in (scope or "").split() if s]


def grant_scopes(requested: list[str], registered: list[str], *, contexts: tuple[str, ...]) -> list[str]:
    """What may be granted of `requested`, given what a client is registered for.

    A requested clinical scope fully covered by a registered one is granted as written (so v1 stays
    v1); one only partly covered is narrowed to the letters a registered scope of the same type
    allows; restricted (`?param=`) scopes and scopes of another context are dropped. Non-clinical
    scopes are granted when registered.
    """
    registered_clinical = [s for s in (parse_scope(r) for r in registered) if s is not None]
    granted: list[str] = []
    for text in requested:
        if text in NON_CLINICAL:
            if text in registered:
                granted.append(text)
            continue
        wanted = parse_scope(text)
        if wanted is None or wanted.restricted or wanted.context not in contexts:
            continue
        if any(r.covers(wanted) for r in registered_clinical):
            granted.append(text)
            continue
        letters = frozenset().union(
            *(r.permissions for r in registered_clinical
              if r.context == wanted.context and not r.restricted and r.resource_type in ("*", wanted.resource_type))
        ) & wanted.permissions
        if letters:
            granted.append(ClinicalScope(wanted.context, wanted.resource_type, letters).text())
    return list(dict.fromkeys(granted))
