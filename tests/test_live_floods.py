"""Floods against a real `puente serve` (issue 16): idle and slow connections are closed, oversized
request heads refused, hostile bodies answered 4xx while the same connection and worker keep serving."""

from __future__ import annotations

import asyncio
import socket
import time
from urllib.parse import urlsplit

import httpx

from tests.fixtures.databases import empty_all_tables
from tests.fixtures.live_server import running_server

IDLE = 1.0
ENV = {"PUENTE_CONNECTION_IDLE_TIMEOUT": str(IDLE)}


def _connect(base: str) -> socket.socket:
    url = urlsplit(base)
    sock = socket.create_connection((url.hostname, url.port), timeout=10)
    return sock


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


async def test_idle_slow_and_oversized_connections(database_url):
    await empty_all_tables(database_url)
    with running_server(database_url, workers=1, extra_env=ENV) as base:
        await asyncio.to_thread(_idle_slow_and_oversized, base)


def _idle_slow_and_oversized(base: str) -> None:
    # 300 connections that never send a request: all closed after the idle timeout
    idle = [_connect(base) for _ in range(300)]
    time.sleep(IDLE + 1)
    assert all(_closed_by_server(s, 5) for s in idle)
    for s in idle:
        s.close()
    # a head sent a byte at a time (slowloris): closed at the deadline, whatever trickles in
    slow = _connect(base)
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    closed = False
    for _ in range(20):
        try:
            slow.sendall(b"X")
        except OSError:
            closed = True
            break
        time.sleep(0.25)
        if _closed_by_server(slow, 0.01):
            closed = True
            break
    assert closed and time.monotonic() - started < IDLE + 4
    slow.close()
    # a head over 64 KiB: 431, then closed
    big = _connect(base)
    big.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
    big.settimeout(5)
    answer = b""
    try:
        while chunk := big.recv(65536):
            answer += chunk
    except OSError:
        pass
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
    big.close()
    # and the worker serves as before
    with httpx.Client(base_url=base, timeout=30) as client:
        assert client.get("/healthz").status_code == 200


async def test_hostile_bodies_on_one_kept_alive_connection(database_url):
    await empty_all_tables(database_url)
    fhir = {"Content-Type": "application/fhir+json"}
    deep = b'{"resourceType":"Patient","extension":' + b'[{"url":"http://x","extension":' * 5000 + b"[]" \
        + b"}]" * 5000 + b"}"
    hostile = [
        ("POST", "/fhir/Patient", deep, fhir, 400),
        ("POST", "/fhir/Patient", b'{"resourceType":"Patient","name":[{"family":"\\ud800"}]}', fhir, 400),
        ("POST", "/fhir/Observation", b'{"resourceType":"Observation","status":"final","code":{"text":"x"},'
         b'"valueQuantity":{"value":1e999999999}}', fhir, 400),
        ("GET", "/fhir/Patient?" + "&".join(["gender=female"] * 1500), None, {}, 400),
        ("GET", "/fhir/Observation?subject" + ".organization" * 60 + "=x", None, {}, 400),
        ("GET", "/fhir/Patient/x/_history/%C2%B9", None, {}, 404),
        ("POST", "/fhir/Patient", b'{"resourceType":"Patient"}', {}, 415),
    ]
    with running_server(database_url, workers=1, extra_env=ENV) as base:
        await asyncio.to_thread(_one_connection, base, hostile)


def _one_connection(base: str, hostile: list) -> None:
    with httpx.Client(base_url=base, timeout=60) as client:
        for method, url, body, headers, status in hostile:
            started = time.monotonic()
            response = client.request(method, url, content=body, headers=headers)
            assert response.status_code == status, (url[:60], response.text[:300])
            assert response.json()["resourceType"] == "OperationOutcome"
            assert time.monotonic() - started < 10
            assert client.get("/healthz").status_code == 200  # same connection, same worker
        assert client.get("/fhir/Patient/_history").json()["total"] == 0
