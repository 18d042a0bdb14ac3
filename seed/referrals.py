"""Referral workflow states: Task status -> ServiceRequest status, and realistic state mixes."""

from __future__ import annotations

import random
from itertools import accumulate

TASK_STATES = (
    "draft", "requested", "received", "accepted", "rejected", "ready", "cancelled",
    "in-progress", "on-hold", "failed", "completed", "entered-in-error",
)

SERVICE_REQUEST_STATUS = {
    "draft": "draft", "requested": "active", "received": "active", "accepted": "active",
    "ready": "active", "in-progress": "active", "on-hold": "on-hold", "rejected": "revoked",
    "cancelled": "revoked", "failed": "revoked", "completed": "completed",
    "entered-in-error": "entered-in-error",
}

# What the facility's front desk writes back, in the facility's words.
BUSINESS_STATUS = {
    "draft": "Borrador del ACS", "requested": "Enviada al establecimiento",
    "received": "Recibida por el establecimiento", "accepted": "Cita programada",
    "rejected": "No corresponde a la jurisdicción", "ready": "Lista para atención",
    "cancelled": "Cancelada por la familia", "in-progress": "Paciente llegó al establecimiento",
    "on-hold": "En espera de resultados", "failed": "Paciente no acudió",
    "completed": "Atendido", "entered-in-error": "Registrada por error",
}

# Recent referrals are mostly still moving; old ones have mostly reached an end state.
_RECENT = {"draft": 3, "requested": 35, "received": 18, "accepted": 20, "ready": 3, "in-progress": 10,
           "on-hold": 2, "rejected": 3, "completed": 6}
_OLD = {"requested": 2, "accepted": 3, "in-progress": 3, "on-hold": 3, "rejected": 5, "cancelled": 7,
        "failed": 15, "completed": 60, "entered-in-error": 2}


def _table(weights: dict[str, int]) -> tuple[tuple[str, ...], list[int]]:
    return tuple(weights), list(accumulate(weights.values()))


_RECENT_TABLE = _table(_RECENT)
_OLD_TABLE = _table(_OLD)


def pick_state(rng: random.Random, age_days: int, serial: int) -> str:
    """The Task state of the `serial`-th referral of the run, `age_days` after it was made.

    The first referrals of a run walk through every state so even a tiny cohort exercises them all.
    """
    if serial < len(TASK_STATES):
        return TASK_STATES[serial]
    states, cum = _RECENT_TABLE if age_days < 21 else _OLD_TABLE
    return rng.choices(states, cum_weights=cum)[0]
