"""A seconds-long run of the whole benchmark harness, so it cannot rot. No timing assertions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import pg
from bench.driver import Load, Request, run_workload
from bench.procs import Server, free_port

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _admin_dsn() -> str:
    return pg.dsn_for(os.environ.get("PUENTE_TEST_POSTGRES_URL", DEFAULT_POSTGRES), "postgres")


def _postgres_or_skip_flag() -> bool:
    """True when PostgreSQL is up; False only when the suite was told to do without it."""
    problem = pg.unreachable_reason(_admin_dsn())
    if problem is None:
        return True
    if os.environ.get("PUENTE_TEST_SKIP_POSTGRES") == "1":
        return False
    pytest.fail(f"PostgreSQL unreachable ({problem}); set PUENTE_TEST_SKIP_POSTGRES=1 to run without it")


def test_smoke_run_prints_a_complete_report(tmp_path: Path) -> None:
    has_pg = _postgres_or_skip_flag()
    out = tmp_path / "results.json"
    cmd = [sys.executable, "-m", "bench.run", "--scale", "smoke", "--driver", "python", "--workers", "1",
           "--seconds", "0.5", "--db", "postgres" if has_pg else "sqlite", "--out", str(out),
           "--pg-admin-dsn", _admin_dsn(), "--db-prefix", f"puente_bench_smoke_{os.getpid()}"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert json.loads(done.stdout) == report

    assert report["meta"]["resources"] > 100 and report["meta"]["machine"]["cpus"]
    floors = ["constant", "insert", "read"] if has_pg else ["constant"]
    for name in floors:
        result = report["floors"][name]
        assert result["valid"], result
        assert set(result["latency_ms"]) >= {"p50", "p95", "p99"}
        assert result["generator"]["cpu_s"] >= 0 and "cpu_s" in result["server"]

    puente = report["puente"]
    if "skipped" in puente:  # `puente serve` not runnable here: the harness said why
        assert puente["skipped"]
        return
    assert puente["load"]["resources"] == report["meta"]["resources"]
    for name in ("create_observation", "household_visit", "read_by_id", "referral_pull",
                 "patient_by_identifier", "observation_search", "everything"):
        assert "requests" in puente[name] or "skipped" in puente[name], (name, puente[name])
    assert puente["transaction_100"]["runs"] == 1
    assert isinstance(report["ratios"], dict)
    assert {t["target"] for t in report["targets"]} >= {"read_by_id >= 0.8 x read floor"}


def test_wrk_and_the_python_driver_report_the_same_shape(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.fail("wrk is not installed: apt-get install -y wrk (.ci/run does)")
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "bench.floors:app", "--port", str(port), "--log-level", "warning"]
    with Server("floors", cmd, {}, port, "/healthz", tmp_path, ROOT) as server:
        server.wait_healthy(30)
        requests = [Request("GET", "/const"), Request("GET", "/read/x")]  # /read without a DB: errors
        results = [run_workload(d, server.base_url, requests, Load(4, 1, 1), server.tree) for d in ("wrk", "python")]
    for result in results:
        assert result["requests"] > 0
        assert set(result["latency_ms"]) == {"p50", "p95", "p99", "max", "mean"}
        assert result["errors"].get("status", 0) > 0  # failures are counted, not hidden
