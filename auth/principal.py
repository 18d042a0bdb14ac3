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

    def allows(self, resource_type: str, interaction: str) -> bool:
        """May this caller do `interaction` (one SMART v2 letter: c r u d s) on `resource_type`?"""
        if self.is_admin and not self.scopes:
            return True
        return any(_scope_allows(scope, resource_type, interaction) for scope in self.scopes)


def _scope_allows(scope: str, resource_type: str, interaction: str) -> bool:
    context, _, rest = scope.partition("/")
    if context not in ("system", "user", "patient") or "." not in rest:
        return False
    scope_type, _, permissions = rest.partition(".")
    if scope_type not in ("*", resource_type):
        return False
    permissions = permissions.split("?", 1)[0]
    if permissions in ("*", "write") and interaction in "cud":
        return True
    if permissions in ("*", "read") and interaction in "rs":
        return True
    return interaction in permissions and set(permissions) <= set("cruds")


# Used only when PUENTE_AUTH=off (local exploration on loopback): sees and may do everything.
LOCAL_EXPLORER = Principal(subject="local-explorer", scopes=frozenset({"system/*.*"}), is_admin=True)
