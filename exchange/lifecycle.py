"""The referral Task's lifecycle (R4 task.html state machine), checked in the writing transaction.

A WriteHook, not an enricher: the rule needs the version being replaced (its status, its `for`),
which only a write event carries. It raises before the transaction commits, so a refused write
leaves nothing behind, whichever door it came through (PUT, PATCH, a Bundle entry).

Who may move a Task (README, "Referral lifecycle"): the owner clinic works it (received, accepted,
rejected, ready, in-progress, on-hold, completed, failed); the requester side (the CHW or supervisor,
or the requesting Organization) asks for it and calls it off (requested, cancelled). Administrators
and the server's own callers may make any transition the state machine has. Once the Task is
completed or cancelled, its ServiceRequest follows (completed, revoked), under the server's authority.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from auth.principal import Principal
from exchange.refusals import BusinessRule, refusal
from fhir_mappings import fhir_json
from fhir_mappings.outcomes import Conflict, Forbidden
from storage.repository import FhirRepository, WriteEvent

# R4 task.html, "Task state machine": where each status may go next. Terminal states go nowhere
# (entered-in-error, for a mistake, is reachable from everywhere and added below).
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "draft": frozenset({"requested", "cancelled"}),
    "requested": frozenset({"received", "accepted", "rejected", "cancelled"}),
    "received": frozenset({"accepted", "rejected", "cancelled"}),
    "accepted": frozenset({"ready", "in-progress", "cancelled"}),
    "ready": frozenset({"in-progress", "cancelled", "failed"}),
    "in-progress": frozenset({"on-hold", "completed", "failed", "cancelled"}),
    "on-hold": frozenset({"in-progress", "cancelled", "failed"}),
    "completed": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
    "rejected": frozenset(),
    "entered-in-error": frozenset(),
}
OWNER_MOVES = frozenset({"received", "accepted", "rejected", "ready", "in-progress", "on-hold", "completed",
                         "failed"})
REQUESTER_MOVES = frozenset({"requested", "cancelled", "entered-in-error"})
# What a non-administrator may create a Task as: a referral starts as asked, not as done.
CREATION_STATES = frozenset({"draft", "requested"})
# Elements that say what the referral is about and who asked: fixed once the Task exists.
FIXED_ELEMENTS = ("for", "focus", "requester")
# Where the ServiceRequest goes when its Task ends (only from a status that is still open).
REQUEST_FOLLOWS = {"completed": "completed", "cancelled": "revoked"}
REQUEST_OPEN = frozenset({"draft", "active", "on-hold"})

EXCHANGE = Principal(subject="puente-exchange", is_admin=True, name="Puente referral exchange")


class TaskLifecycle:
    def quiet_creation(self, resource_type: str, resource_id: str, resource: dict[str, Any]) -> bool:
        """Only a Task is judged (and may be refused) here."""
        return resource_type != "Task"

    async def __call__(self, repository: FhirRepository, events: Sequence[WriteEvent]) -> None:
        follow: dict[str, str] = {}  # ServiceRequest id -> the status it must take
        for event in events:
            if event.version.resource_type != "Task" or event.resource is None:
                continue
            task = event.resource
            previous = _previous(event)
            if previous is None:
                _check_creation(repository.principal, task)
            else:
                _check_fixed(previous, task)
                _check_move(repository.principal, previous, task)
            status = task.get("status")
            if status in REQUEST_FOLLOWS and (previous is None or previous.get("status") != status):
                for request_id in _requests_of(task):
                    follow[request_id] = REQUEST_FOLLOWS[status]
        if follow:
            await _follow(repository.with_principal(EXCHANGE), follow)


def _previous(event: WriteEvent) -> dict[str, Any] | None:
    previous = event.previous
    if previous is None or previous.deleted or previous.content is None:
        return None  # a creation, or an update-as-create over a deleted Task: a new start
    loaded: dict[str, Any] = fhir_json.loads_stored(previous.content)
    return loaded


def _check_creation(principal: Principal, task: dict[str, Any]) -> None:
    status = task.get("status")
    if principal.is_admin or status in CREATION_STATES:
        return
    raise refusal(BusinessRule, f"A referral Task starts as 'draft' or 'requested', not '{status}'"
                   " (rule task-creation-status)", "Task.status")


def _check_fixed(previous: dict[str, Any], task: dict[str, Any]) -> None:
    changed = [name for name in FIXED_ELEMENTS if previous.get(name) != task.get(name)]
    if changed:
        raise refusal(BusinessRule, f"Task.{changed[0]} is fixed once the referral exists; create a new Task"
                       " instead (rule task-fixed-elements)", f"Task.{changed[0]}")


def _check_move(principal: Principal, previous: dict[str, Any], task: dict[str, Any]) -> None:
    before, after = previous.get("status"), task.get("status")
    if before == after:
        return
    allowed = TRANSITIONS.get(str(before), frozenset()) | {"entered-in-error"}
    if after not in allowed:
        raise refusal(Conflict, f"A Task cannot go from '{before}' to '{after}'; from '{before}' it may go to "
                       f"{_listed(TRANSITIONS.get(str(before), frozenset()))} (rule task-state-machine, R4 task.html)",
                       "Task.status")
    if principal.is_admin:
        return
    if after in OWNER_MOVES and not _is_owner(principal, previous):
        raise refusal(Forbidden, f"Only the clinic that owns the Task ({_reference(previous.get('owner')) or 'none'})"
                       f" may set it to '{after}' (rule task-owner-moves)", "Task.status")
    if after in REQUESTER_MOVES and not _is_requester_side(principal, previous):
        raise refusal(Forbidden, "Only the referral's requester (a CHW or supervisor, or the requesting"
                       f" organization) may set it to '{after}' (rule task-requester-moves)", "Task.status")


def _is_owner(principal: Principal, task: dict[str, Any]) -> bool:
    return principal.organization is not None and principal.organization == _reference(task.get("owner"))


def _is_requester_side(principal: Principal, task: dict[str, Any]) -> bool:
    """The community side: a CHW or supervisor (access rules already limit which Tasks they reach),
    or the Organization named as requester."""
    if principal.practitioner and principal.role in ("chw", "supervisor"):
        return True
    return principal.organization is not None and principal.organization == _reference(task.get("requester"))


def _reference(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("reference"), str):
        return str(value["reference"])
    return None


def _requests_of(task: dict[str, Any]) -> list[str]:
    references = [_reference(task.get("focus")), *(_reference(r) for r in task.get("basedOn") or [])]
    return sorted({r.partition("/")[2] for r in references if r and r.startswith("ServiceRequest/")})


def _listed(states: frozenset[str]) -> str:
    return ", ".join(f"'{s}'" for s in sorted(states)) or "nowhere (it is final)"


async def _follow(repository: FhirRepository, follow: Mapping[str, str]) -> None:
    """Move each open ServiceRequest to the status its Task's ending gives it."""
    stored = await repository.read_many("ServiceRequest", list(follow))
    for request_id, status in sorted(follow.items()):
        current = stored.get(request_id)
        if current is None or current.deleted or current.content is None:
            continue
        request = fhir_json.loads_stored(current.content)
        if request.get("status") not in REQUEST_OPEN:
            continue
        await repository.update("ServiceRequest", request_id, {**request, "status": status},
                                if_match=current.version_id)
