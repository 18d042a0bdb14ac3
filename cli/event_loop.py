"""Which event loop `puente serve` runs its workers on.

uvicorn takes uvloop whenever it is installed. On the embedded default (SQLite, one worker) that
served reads unevenly: with 32 kept-alive connections the median read by id took 18-22 ms as the
client saw it, but about one in a hundred took 5 to 20 times that (p99 90-320 ms, max up to 0.5 s)
although the server never spent over 25 ms on one; asyncio's own loop answered the same reads at
the same rate with p99 23-31 ms. A bare uvicorn app that burns 0.6 ms a request shows the same tail
on uvloop and none on asyncio: the loop, not Puente's work (bench/RESULTS.md, session 13).

Everywhere else uvloop stays. With several workers, asyncio's accept takes up to a hundred waiting
connections at once, so one worker took nearly all of a burst (bench.run on PostgreSQL, 2 workers:
"workers unevenly loaded [4.18, 0.22]", reads by id 667/s against 2,126/s on uvloop). On
PostgreSQL a read awaits the driver, so asyncio gave no fairer turns there either (one worker:
p90 92 ms against 30 ms).
"""

from __future__ import annotations

from typing import Literal

from settings import Settings
from storage.database import is_sqlite

# uvicorn's names: "auto" is uvloop where it is installed (uvicorn[standard] leaves it out on Windows).
LoopName = Literal["asyncio", "uvloop", "auto"]


def event_loop_for(settings: Settings, workers: int) -> LoopName:
    """PUENTE_EVENT_LOOP when it names a loop; otherwise asyncio for one SQLite worker, else uvicorn's
    own choice (uvloop here)."""
    if settings.event_loop != "auto":
        return settings.event_loop
    return "asyncio" if is_sqlite(settings.database_url) and workers == 1 else "auto"
