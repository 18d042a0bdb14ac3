"""A clinic's FHIR server, for real: a second ASGI app served by uvicorn on a free port.

It receives rest-hook notifications (a ping POSTed to /hook, or the resource PUT under /fhir) and
records each with its subscription and event number. It can be stopped and started again on the
same port, and made to lose acknowledgements: it records the event, then answers too late for
Puente's timeout, so Puente must send it again.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response

from tests.fixtures.live_server import free_port


@dataclass(frozen=True)
class Received:
    subscription: str
    event_number: int
    method: str
    path: str
    body: bytes
    headers: dict[str, str]


@dataclass
class ClinicSimulator:
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    lose_acks: int = 0  # the next N notifications are recorded, then answered after `slow_seconds`
    slow_seconds: float = 0.0
    lost: set[tuple[str, int]] = field(default_factory=set)  # (subscription, event) whose ack was lost
    late: set[tuple[str, int]] = field(default_factory=set)  # of those, the ones answered late on purpose
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[Any] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            return await self._record(request)

        @app.post("/fhir")
        async def handshake(request: Request) -> Response:  # a full-payload channel's handshake ping
            return await self._record(request)

        @app.put("/fhir/{resource_type}/{resource_id}")
        async def put(request: Request) -> Response:
            return await self._record(request)

        return app

    async def _record(self, request: Request) -> Response:
        body = await request.body()
        event = Received(request.headers.get("x-puente-subscription", ""),
                         int(request.headers.get("x-puente-event-number", "0")), request.method, request.url.path,
                         body, dict(request.headers))
        self.received.append(event)
        if self._server is not None and self._server.should_exit:  # stopping: the answer may not get out
            self.lost.add((event.subscription, event.event_number))
        if self.lose_acks > 0 and request.headers.get("x-puente-handshake") is None:
            self.lose_acks -= 1
            self.lost.add((event.subscription, event.event_number))
            self.late.add((event.subscription, event.event_number))
            await asyncio.sleep(self.slow_seconds)
        return Response(status_code=200)

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        config = uvicorn.Config(self.app(), log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._server = self._task = None

    def events(self, subscription: str) -> list[int]:
        return [r.event_number for r in self.received if r.subscription == subscription and r.event_number]


def assert_in_order_with_repeats_only_where_acks_were_lost(
    sim: ClinicSimulator, subscription: str, unacknowledged: set[int] = frozenset()  # type: ignore[assignment]
) -> None:
    """Each event arrives after the one before it; the only repeats are of events whose acknowledgement
    was lost: made late on purpose here (`sim.lost`), or recorded by Puente as an attempt that got no
    2xx back (`unacknowledged`: a timeout on this busy machine, a connection cut)."""
    seen = 0
    for number in sim.events(subscription):
        if number == seen:
            assert (subscription, number) in sim.lost or number in unacknowledged, (
                f"event {number} repeated without a lost acknowledgement")
            continue
        assert number == seen + 1, f"event {number} arrived after {seen}"
        seen = number


async def unacknowledged(database_url: str, subscription: str) -> set[int]:
    """The events of which Puente recorded an attempt that got no 2xx answer."""
    from sqlalchemy import or_, select

    from exchange import tables
    from storage.database import create_engine

    a = tables.attempts
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(select(a.c.event_number).where(
                a.c.subscription_id == subscription,
                or_(a.c.status_code.is_(None), a.c.status_code < 200, a.c.status_code >= 300)))
            return {int(row.event_number) for row in rows}
    finally:
        await engine.dispose()
