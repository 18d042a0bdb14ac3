"""Run one workload with a load generator (wrk, or `bench.pyload`) and measure it.

Both generators take the same requests file and print the same JSON; the harness adds the
generator's own CPU time (from `wait4`) and the server's CPU time and memory (from /proc), so a
result says whether the generator or the server was the bottleneck.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import ProcessTree

LUA = Path(__file__).with_name("lua") / "requests.lua"


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    body: bytes = b""

    def line(self) -> str:
        body = self.body.decode()
        if "\n" in body or "\t" in body:
            raise ValueError("request bodies must be single-line JSON")
        return f"{self.method}\t{self.path}\t{body}\n"


@dataclass(frozen=True, slots=True)
class Load:
    connections: int = 32
    threads: int = 2
    seconds: float = 10.0


def available_driver(preferred: str = "auto") -> str:
    if preferred == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    if preferred == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk not found: `apt-get install -y wrk` (Debian/Ubuntu), or use --driver python")
    return preferred


def run_workload(driver: str, base_url: str, requests: Sequence[Request], load: Load,
                 server: ProcessTree | None, database: ProcessTree | None = None) -> dict[str, Any]:
    """Drive `base_url` with `requests` (cycled) for `load.seconds`; return the measured result."""
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False, encoding="utf-8") as f:
        f.writelines(r.line() for r in requests)
        path = f.name
    try:
        if driver == "wrk":
            cmd = ["wrk", f"-t{load.threads}", f"-c{load.connections}", f"-d{max(1, round(load.seconds))}s",
                   "--latency", "--timeout", "10s", "-s", str(LUA), base_url, "--", path, str(load.threads)]
        else:
            cmd = [sys.executable, "-m", "bench.pyload", "--url", base_url, "--requests", path,
                   "--connections", str(load.connections), "--duration", str(load.seconds)]
        before = server.cpu_by_pid() if server else None
        db_before = database.cpu_seconds() if database else None
        _child_cpu_delta()  # forget anything reaped earlier: the next delta is this generator's
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=Path(__file__).resolve().parents[1])
        out, err = proc.communicate()
        cpu = _child_cpu_delta()  # communicate() reaped the generator: its rusage is now ours
        if proc.returncode != 0:
            raise RuntimeError(f"{driver} failed ({proc.returncode}): {err.decode()[-2000:]}")
        raw = json.loads(out.decode().strip().splitlines()[-1])
    finally:
        os.unlink(path)
    seconds = raw["duration_us"] / 1e6
    result: dict[str, Any] = {
        "requests": raw["requests"],
        "seconds": round(seconds, 2),
        "rps": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "latency_ms": {k: round(v / 1000, 2) for k, v in raw["latency_us"].items()},
        "errors": {k: v for k, v in raw["errors"].items() if v},
        "generator": {"tool": driver, "cpu_s": round(cpu, 2),
                      "cpu_pct_of_one_core": round(100 * cpu / seconds, 1) if seconds else 0.0},
    }
    if database and db_before is not None:
        used = database.cpu_seconds() - db_before
        result["database"] = {"cpu_s": round(used, 2),
                              "cpu_pct_of_one_core": round(100 * used / seconds, 1) if seconds else 0.0}
    if server and before is not None:
        after = server.cpu_by_pid()
        per_process = sorted((after[p] - before.get(p, 0.0) for p in after), reverse=True)
        used = sum(per_process)
        result["server"] = {"cpu_s": round(used, 2),
                            "cpu_pct_of_one_core": round(100 * used / seconds, 1) if seconds else 0.0,
                            # uvicorn hands each keep-alive connection to one worker for good; a
                            # lopsided split means the run measured fewer cores than it had.
                            "cpu_s_by_process": [round(c, 2) for c in per_process if c >= 0.01],
                            "rss_mb": round(server.rss_bytes() / 2**20, 1)}
    return result


_last_children_cpu = 0.0


def _child_cpu_delta() -> float:
    """CPU time used by children reaped since the previous call (the generator, reaped just now)."""
    global _last_children_cpu
    usage = os.times()
    total = usage.children_user + usage.children_system
    delta, _last_children_cpu = total - _last_children_cpu, total
    return delta
