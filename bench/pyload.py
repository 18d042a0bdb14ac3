"""A small closed-loop HTTP/1.1 load generator on asyncio streams (the fallback when wrk is absent).

    python -m bench.pyload --url http://127.0.0.1:8000 --requests reqs.tsv --connections 32 --duration 5

Each connection keeps one request in flight, cycling through pre-encoded requests (one per line of
the requests file: `METHOD<TAB>PATH<TAB>BODY`). Latency is send-to-last-byte per request. Prints one
JSON object in the same shape as `bench/lua/requests.lua`. httpx is far too slow to load a server;
this client spends its time in the event loop, not in HTTP parsing, so on the same machine it needs
roughly half a core per few thousand requests per second (its CPU is reported by the harness).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlsplit

try:  # uvloop ships with uvicorn[standard]; plain asyncio works too, just slower
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None  # type: ignore[assignment]


def encode_requests(lines: list[str], host: str) -> list[bytes]:
    out = []
    for line in lines:
        method, path, body = [*line.rstrip("\n").split("\t", 2), "", ""][:3]
        data = body.encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/fhir+json\r\n"
        if data or method in ("POST", "PUT"):
            head += f"Content-Type: application/fhir+json\r\nContent-Length: {len(data)}\r\n"
        out.append(head.encode() + b"\r\n" + data)
    return out


class Stats:
    def __init__(self) -> None:
        self.latencies: list[int] = []
        self.status_errors = 0
        self.read_errors = 0
        self.connect_errors = 0


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = None
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _connection(host: str, port: int, reqs: list[bytes], start: int, deadline: float,
                      stats: Stats) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        stats.connect_errors += 1
        return
    i = start
    n = len(reqs)
    clock = time.perf_counter_ns
    try:
        while time.monotonic() < deadline:
            t0 = clock()
            writer.write(reqs[i % n])
            status = await _read_response(reader)
            stats.latencies.append(clock() - t0)
            if status >= 400:
                stats.status_errors += 1
            i += 1
    except (OSError, asyncio.IncompleteReadError, ValueError):
        stats.read_errors += 1
    finally:
        writer.close()


def percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return float(sorted_values[k])


async def run(url: str, lines: list[str], connections: int, duration: float) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    reqs = encode_requests(lines, f"{host}:{port}")
    stats = Stats()
    started = time.monotonic()
    deadline = started + duration
    step = max(1, len(reqs) // connections)
    await asyncio.gather(*(_connection(host, port, reqs, c * step, deadline, stats) for c in range(connections)))
    elapsed = time.monotonic() - started
    lat = sorted(stats.latencies)
    us = 1000.0
    return {
        "requests": len(lat),
        "duration_us": elapsed * 1e6,
        "errors": {"connect": stats.connect_errors, "read": stats.read_errors, "write": 0,
                   "status": stats.status_errors, "timeout": 0},
        "latency_us": {"p50": percentile(lat, 50) / us, "p95": percentile(lat, 95) / us,
                       "p99": percentile(lat, 99) / us, "max": (lat[-1] / us) if lat else 0.0,
                       "mean": (sum(lat) / len(lat) / us) if lat else 0.0},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--requests", required=True, help="file: METHOD<TAB>PATH<TAB>BODY per line")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args(argv)
    with open(args.requests, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    if uvloop is not None:
        uvloop.install()
    result = asyncio.run(run(args.url, lines, args.connections, args.duration))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
