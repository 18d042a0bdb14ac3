"""Who is making a request. Built by `auth` from a verified token; read by storage for access rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from auth.scopes import ClinicalScope, parse_scope


@dataclass(frozen=True)
class Principal:
    subject: str
    client_id: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    organization: str | None = None  # "Organization/ID" a clinic client is bound to
    practitioner: str | None = None  # "Practitioner/ID" of a CHW / supervisor user
    role: str | None = None  # chw | supervisor | admin
    is_admin: bool = False
    patient: str | None = None  # "Patient/ID" in context: what patient/ scopes are about
    name: str | None = None  # a display for audit records (username or client name)

    @cached_property
    def _clinical(self) -> tuple[ClinicalScope, ...]:
        parsed = (parse_scope(s) for s in self.scopes)
        # patient/ scopes mean "about the patient in context"; without one they grant nothing.
        return tuple(s for s in parsed if s is not None and (s.context != "patient" or self.patient))

    @property
    def author(self) -> str | None:
        """Whom the resources this caller writes are attributed to (and who may see them again):
        the signed-in user's Practitioner, the Organization a clinic client is bound to, or the
        client itself; None for the server's own callers."""
        if self.practitioner:
            return self.practitioner
        if self.organization:
            return self.organization
        return f"Client/{self.client_id}" if self.client_id else None

    @property
    def user(self) -> str | None:
        """The signed-in user (token subject) when a person, not a system, makes the request."""
        return self.subject if self.role else None

    def allows(self, resource_type: str, interaction: str) -> bool:
        """May this caller do `interaction` (one SMART v2 letter: c r u d s) on `resource_type`?

        v1 and v2 scopes are understood; scopes narrowed by search parameters grant nothing.
        An administrator principal without scopes is an internal caller (the audit writer).
        """
        if self.is_admin and not self.scopes:
            return True
        return any(s.grants(resource_type, interaction) for s in self._clinical)


# Used only when PUENTE_AUTH=off (local exploration on loopback): sees and may do everything.
LOCAL_EXPLORER = Principal(subject="local-explorer", scopes=frozenset({"system/*.*"}), is_admin=True)
