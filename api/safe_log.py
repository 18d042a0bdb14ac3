"""Logging a failure without the data that caused it.

An exception's message can carry what a client sent (a name, a DNI number, a whole resource in a
validation error, SQL parameters in a driver error), and a traceback printed in full once wrote
1.9 MB for one 109 KB request. What is logged instead: the exception types of the chain, the
PostgreSQL SQLSTATE when there is one, and where it happened (file:line function), bounded in size.
"""

from __future__ import annotations

import logging
import traceback

_FRAMES = 12  # the innermost frames say where; the outer ones are the framework's
MAX_LINE = 2048  # characters in one failure's log line


def describe(exc: BaseException) -> str:
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(parts) < 4:
        seen.add(id(current))
        state = getattr(current, "sqlstate", None) or getattr(getattr(current, "orig", None), "sqlstate", None)
        frames = traceback.extract_tb(current.__traceback__)[-_FRAMES:]
        where = " < ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno} {f.name}" for f in reversed(frames))
        kind = f"{type(current).__module__}.{type(current).__qualname__}"
        parts.append(f"{kind}{f' [SQLSTATE {state}]' if state else ''} at {where or '?'}")
        current = current.__cause__ or current.__context__
    return " caused by ".join(parts)[:MAX_LINE]


def log_failure(message: str, exc: BaseException, logger: logging.Logger | None = None) -> None:
    (logger or logging.getLogger("puente.api")).error("%s: %s", message, describe(exc))
