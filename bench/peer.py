"""Puente's embedded default against the peer Python FHIR server on SQLite (SEKMET), in one run.

    uv run python -m bench.peer --seconds 8 --rounds 2

SEKMET (`sekmet-fhir`, pinned in bench/peer-requirements.txt, never a dependency of Puente) is
installed into its own virtual environment (`--peer-venv`, created with `uv venv` + `uv pip
install` when missing) and served with `sekmet serve` from a fresh directory (its SQLite file lives
there). Puente is served with `puente serve --workers 1` on a fresh SQLite file, PUENTE_AUTH=off.
Each server gets the same 2,000 Observations first (POST), then, alternating per round, wrk
(-t2 -c32) drives `create` (POST /fhir/Observation, the same bodies on both) and `read`
(GET /fhir/Observation/{id} over the ids that server gave). Prints JSON with `puente / sekmet`
per workload and round (the issue's target: at least 1.5 for both), and each server's p99 / p50
per workload (`puente_p99_per_p50`: the worst round; the target: at most 5).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench.driver import Load, Request, available_driver, run_workload
from bench.procs import Server, free_port
from fhir_mappings import fhir_json

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = Path(__file__).with_name("peer-requirements.txt")
FHIR_JSON = {"Content-Type": "application/fhir+json"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.peer", description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--driver", choices=("auto", "wrk", "python"), default="auto")
    p.add_argument("--peer-venv", default=str(Path(tempfile.gettempdir()) / "puente-bench-sekmet"))
    p.add_argument("--out")
    args = p.parse_args(argv)
    driver = available_driver(args.driver)
    load = Load(args.connections, args.threads, args.seconds)
    sekmet = _install_peer(Path(args.peer_venv))
    out: dict[str, Any] = {"meta": {
        "driver": driver, "loadavg": os.getloadavg(), "peer": REQUIREMENTS.read_text().strip(),
        "load": {"connections": load.connections, "threads": load.threads, "seconds": load.seconds}}}
    bodies = [fhir_json.dumps(_observation(n)) for n in range(2000)]
    with tempfile.TemporaryDirectory(prefix="puente-peer-") as tmp:
        work = Path(tmp)
        servers = {"puente": _serve_puente(work), "sekmet": _serve_sekmet(sekmet, work)}
        try:
            ids = {name: _preload(server.base_url, bodies) for name, server in servers.items()}
            rounds: list[dict[str, Any]] = []
            for number in range(args.rounds):
                measured: dict[str, Any] = {}
                for name, server in servers.items():
                    workloads = {
                        "create": [Request("POST", "/fhir/Observation", b) for b in bodies],
                        "read": [Request("GET", f"/fhir/Observation/{i}") for i in ids[name]],
                    }
                    for workload, requests in workloads.items():
                        result = run_workload(driver, server.base_url, requests, load, server.tree)
                        measured[f"{name}:{workload}"] = result
                        latency = result["latency_ms"]
                        _log(f"  round {number + 1} {name}:{workload}: {result['rps']}/s p50={latency['p50']}ms"
                             f" p99={latency['p99']}ms errors={result['errors']}")
                measured["ratios"] = {
                    w: round(measured[f"puente:{w}"]["rps"] / max(measured[f"sekmet:{w}"]["rps"], 1e-9), 3)
                    for w in ("create", "read")}
                # The tail target: p99 at most 5x p50 at 32 connections.
                measured["p99_per_p50"] = {
                    key: round(measured[key]["latency_ms"]["p99"] / max(measured[key]["latency_ms"]["p50"], 1e-9), 2)
                    for key in measured if ":" in key}
                _log(f"  round {number + 1} puente / sekmet: {measured['ratios']}; p99/p50: {measured['p99_per_p50']}")
                rounds.append(measured)
            out["rounds"] = rounds
            out["puente_per_sekmet"] = {
                w: statistics.median(r["ratios"][w] for r in rounds) for w in ("create", "read")}
            out["puente_p99_per_p50"] = {
                w: max(r["p99_per_p50"][f"puente:{w}"] for r in rounds) for w in ("create", "read")}
        finally:
            for server in servers.values():
                server.stop()
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


def _install_peer(venv: Path) -> Path:
    sekmet = venv / "bin" / "sekmet"
    if not sekmet.exists():
        uv = shutil.which("uv") or "uv"
        subprocess.run([uv, "venv", "-q", str(venv), "--python", sys.executable], check=True)
        subprocess.run([uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "-r", str(REQUIREMENTS)],
                       check=True)
    return sekmet


def _serve_puente(work: Path) -> Server:
    port = free_port()
    env = {"PUENTE_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'puente.db'}", "PUENTE_AUTH": "off",
           "PUENTE_DATA_DIR": str(work / "puente-data"), "PUENTE_BASE_URL": f"http://127.0.0.1:{port}"}
    puente = str(ROOT / ".venv" / "bin" / "puente")
    cmd = [puente, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    server = Server("puente", cmd, env, port, "/healthz", work, ROOT)
    server.wait_healthy(180)
    return server


def _serve_sekmet(sekmet: Path, work: Path) -> Server:
    home = work / "sekmet"
    home.mkdir()
    port = free_port()
    cmd = [str(sekmet), "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = Server("sekmet", cmd, {}, port, "/fhir/metadata", work, home)
    server.wait_healthy(120)
    return server


def _observation(n: int) -> dict[str, Any]:
    return {
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/peer-{n % 50}"},
        "effectiveDateTime": f"2026-12-0{1 + n % 4}T10:{n % 60:02d}:00Z",
        "valueQuantity": {"value": 110 + n % 30, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    }


def _preload(base_url: str, bodies: list[bytes]) -> list[str]:
    ids = []
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for body in bodies:
            r = client.post("/fhir/Observation", content=body, headers=FHIR_JSON)
            r.raise_for_status()
            ids.append(r.json()["id"])
    return ids


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


if __name__ == "__main__":
    raise SystemExit(main())
