"""The write-event seam: how every consumer of writes hears about them, inside the writing transaction.

Storage calls two kinds of subscriber, and knows nothing else about them:

- an `EnrichHook` runs before a create or update is stamped and stored, and may add server-derived
  elements to the resource (the programme's rules interpret a hemoglobin here); it only reads (a
  single create's enrichers may read before their transaction's BEGIN: QuietCreation);
- a `WriteHook` runs after writes, in their transaction, with `WriteEvent`s: the version just
  stored and the one it replaced. Whatever it writes (derived facts, outbox rows) commits or rolls
  back with the write that caused it, so nothing acknowledged is lost and nothing is half-done;
- a `WriteQuestion` is what a hook asks of every write's type before anything else (which
  subscriptions are live for Observations?), which the write's own statement answers when it can.

`wiring.write_subscribers` is the one place that decides who subscribes: the programme's rules
today; the exchange package (subscription matching into outbox rows) subscribes the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from storage.versions import StoredVersion

if TYPE_CHECKING:  # the repository is what the subscribers are handed
    from storage.repository import FhirRepository


@dataclass(frozen=True)
class WriteEvent:
    """What a write hook sees: the version just stored and the one it replaced."""

    version: StoredVersion
    resource: dict[str, Any] | None  # None for a deletion
    previous: StoredVersion | None


class WriteHook(Protocol):
    """Runs after writes, in their transaction (e.g. to store derived facts).

    One call per write, or per batch (`create_many`, `delete_many`); when a transaction Bundle defers
    hooks, all of its writes arrive in one call, so a hook can judge what belongs together (one
    child's weight and height) once.
    """

    async def __call__(self, repository: FhirRepository, events: Sequence[WriteEvent]) -> None: ...


class EnrichHook(Protocol):
    """Runs before a create/update is stamped and stored; may add server-derived elements to `resource`."""

    async def __call__(self, repository: FhirRepository, resource: dict[str, Any]) -> None: ...


class QuietCreation(Protocol):
    """What a WriteHook may also say, before a single create is stored, of the resource as its
    enrichers left it: True, the creation writes nothing here whatever the database holds; False, it
    may write; an SQL condition (over `:resource_type`), it writes nothing while that holds. When
    every hook says so, the create commits on its own statement, which checks the conditions in its
    own snapshot and stores nothing when one fails (PostgreSQL: storage.version_writes.insert_alone),
    one round trip instead of BEGIN, the insert and COMMIT. A hook that does not say may write."""

    def quiet_creation(self, resource_type: str, resource_id: str, resource: dict[str, Any]) -> bool | str: ...


def quiet_conditions(
    hooks: Sequence[WriteHook], resource_type: str, resource_id: str, resource: dict[str, Any]
) -> tuple[str, ...] | None:
    """The conditions under which creating `resource` writes nothing beyond itself (QuietCreation),
    or None when a hook may write (or does not say)."""
    conditions: list[str] = []
    for hook in hooks:
        say = getattr(hook, "quiet_creation", None)
        answer = say(resource_type, resource_id, resource) if say is not None else False
        if answer is False:
            return None
        if isinstance(answer, str):
            conditions.append(answer)
    return tuple(conditions)


@dataclass(frozen=True)
class WriteQuestion:
    """A question a hook asks of every written type, answered by the write's own statement where
    there is one to ride on (PostgreSQL's single create, storage.version_writes.insert_leased: one
    round trip fewer for the commonest write). `sql` is a scalar subquery over `:resource_type`, seen
    from that statement's snapshot; its answer, `decode`d, is kept in the transaction's
    storage.write_memo under `key`, by type, where the hook looks before asking the database."""

    key: str
    sql: str
    decode: Callable[[Any], Any]


@dataclass(frozen=True)
class WriteSubscribers:
    enrichers: tuple[EnrichHook, ...] = ()
    hooks: tuple[WriteHook, ...] = ()
    questions: tuple[WriteQuestion, ...] = ()


NO_SUBSCRIBERS = WriteSubscribers()
