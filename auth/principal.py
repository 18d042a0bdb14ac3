"""Who is making a request. Built by `auth` from a verified token; read by storage for access rules."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Principal:
    subject: str
    client_id: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    organization: str | None = None  # "Organization/ID" a clinic client is bound to
    practitioner: str | None = None  # "Practitioner/ID" of a CHW / supervisor user
    role: str | None = None  # chw | supervisor | admin
    is_admin: bool = False


# Used only when PUENTE_AUTH=off (local exploration on loopback): sees and may do everything.
LOCAL_EXPLORER = Principal(subject="local-explorer", scopes=frozenset({"system/*.*"}), is_admin=True)
