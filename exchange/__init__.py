"""Referral exchange: what leaves the building, and the referral rules it depends on.

Fed only by storage's write-event seam (`storage.write_events`), wired in `wiring`:

- `TaskLifecycle` (a WriteHook) holds every write of a referral Task to the R4 state machine and to
  who may make each move, and moves the ServiceRequest when its Task ends.
"""

from __future__ import annotations

from exchange.lifecycle import TaskLifecycle
from storage.write_events import WriteSubscribers


def subscribers() -> WriteSubscribers:
    return WriteSubscribers(hooks=(TaskLifecycle(),))


__all__ = ["TaskLifecycle", "subscribers"]
