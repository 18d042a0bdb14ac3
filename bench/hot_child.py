"""One child with a crowded day: do the clinical rules slow a weight down with the day's size?

    uv run python -m bench.hot_child --db postgres --workers 2            # this checkout
    uv run python -m bench.hot_child --db sqlite --workers 1 --against /work/speed-base

Serves Puente (`puente serve`, PUENTE_AUTH=off) on a fresh database that is never analysed (as
with autovacuum off), gives one child (14 months old) `--observations` Observations dated one day
(half weights, half heart rates: a device feeding vitals, a re-weighing loop), loaded over HTTP
in transactions with the rules on, then drives it with the load generator (wrk -t2 -c32 when
installed), alternating two workloads of `POST /fhir/Observation` for that child and that day:

- `unread_code`: a heart rate, a code no rule reads (the rules' cheap check only);
- `weight`: a new weight, each later than the last: the rules score the day (the new weight is its
  latest), replace the previous weight's z-scores and re-judge the growth Flags.

The target is `weight / unread_code` (same server, same run, interleaved rounds): at least 0.5 for
5,000 same-day Observations. With `--against DIR` the same is measured on DIR's checkout (its own
`.venv`), one server after the other in each round. Prints JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import pg
from bench.driver import Load, Request, available_driver, run_workload
from bench.procs import Server, free_port, postmaster
from fhir_mappings import fhir_json

ROOT = Path(__file__).resolve().parents[1]
CHILD = "hot-child"
WEIGHT, HEART_RATE = "29463-7", "8867-4"
FHIR_JSON = {"Content-Type": "application/fhir+json"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hot_child", description=__doc__.splitlines()[0])
    p.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--observations", type=int, default=5000, help="same-day Observations before the load")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--driver", choices=("auto", "wrk", "python"), default="auto")
    p.add_argument("--against", help="another checkout (with its .venv) measured the same way")
    p.add_argument("--pg-admin-dsn", default=os.environ.get("BENCH_PG_ADMIN_DSN", pg.DEFAULT_ADMIN_DSN))
    p.add_argument("--db-prefix", default="puente_hot", help="name of the fresh databases (PostgreSQL)")
    p.add_argument("--out")
    args = p.parse_args(argv)
    driver = available_driver(args.driver)
    load = Load(args.connections, args.threads, args.seconds)
    checkouts = {"this": ROOT, **({"against": Path(args.against).resolve()} if args.against else {})}
    day = dt.datetime.now(dt.UTC).date()
    out: dict[str, Any] = {"meta": {"db": args.db, "workers": args.workers, "observations": args.observations,
                                    "driver": driver, "day": day.isoformat(),
                                    "load": {"connections": load.connections, "threads": load.threads,
                                             "seconds": load.seconds},
                                    "loadavg": os.getloadavg()}}
    with tempfile.TemporaryDirectory(prefix="puente-hot-") as workdir:
        servers = {name: _serve(name, path, args, Path(workdir), day) for name, path in checkouts.items()}
        try:
            for name, server in servers.items():
                out[name] = {"rounds": []}
                _log(f"{name}: loading {args.observations} same-day Observations")
                out[name]["load_s"] = _load_day(server.base_url, day, args.observations)
            database = postmaster() if args.db == "postgres" else None
            for round_number in range(args.rounds):
                for name, server in servers.items():
                    measured = {}
                    for workload in ("unread_code", "weight"):
                        requests = _posts(workload, day, round_number, 40_000)
                        result = run_workload(driver, server.base_url, requests, load,
                                              server.tree, database)
                        measured[workload] = result
                        _log(f"  {name} round {round_number + 1} {workload}: {result['rps']}/s "
                             f"p50={result['latency_ms']['p50']}ms p99={result['latency_ms']['p99']}ms "
                             f"errors={result['errors']}")
                    measured["ratio"] = round(measured["weight"]["rps"] / max(measured["unread_code"]["rps"], 1e-9), 3)
                    out[name]["rounds"].append(measured)
                out_round = {n: out[n]["rounds"][-1]["ratio"] for n in servers}
                _log(f"  round {round_number + 1} weight/unread_code: {out_round}")
            for name in servers:
                ratios = [r["ratio"] for r in out[name]["rounds"]]
                out[name]["weight_per_unread_code"] = {"median": statistics.median(ratios), "all": ratios}
        finally:
            for server in servers.values():
                server.stop()
            if args.db == "postgres":
                for name in servers:
                    pg.drop(args.pg_admin_dsn, f"{args.db_prefix}_{name}")
    out["target"] = {"weight / unread_code >= 0.5": out["this"]["weight_per_unread_code"]["median"] >= 0.5}
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


def _serve(name: str, checkout: Path, args: argparse.Namespace, workdir: Path, day: dt.date) -> Server:
    if args.db == "postgres":
        db_url = pg.sqlalchemy_url(pg.recreate(args.pg_admin_dsn, f"{args.db_prefix}_{name}"))
    else:
        db_url = f"sqlite+aiosqlite:///{workdir / f'{name}.db'}"
    port = free_port()
    env = {"PUENTE_DATABASE_URL": db_url, "PUENTE_AUTH": "off", "PUENTE_DATA_DIR": str(workdir / f"data-{name}"),
           "PUENTE_BASE_URL": f"http://127.0.0.1:{port}",
           # Each server runs its own checkout's code, whatever PYTHONPATH the bench itself runs with
           # (e.g. a snapshot of this checkout, so that editing it does not change a running bench).
           "PYTHONPATH": str(checkout)}
    puente = checkout / ".venv" / "bin" / "puente"
    cmd = [str(puente), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers)]
    server = Server(f"puente-{name}", cmd, env, port, "/healthz", workdir, checkout)
    server.wait_healthy(180)
    return server


def _observation(oid: str | None, code: str, value: float, unit: str, when: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{CHILD}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }
    if oid is not None:
        body["id"] = oid
    return body


def _at(day: dt.date, seconds: float) -> str:
    moment = dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _load_day(base_url: str, day: dt.date, count: int) -> float:
    """The child and `count` same-day Observations (the first half of the day), with the rules on."""
    started = time.perf_counter()
    born = day - dt.timedelta(days=425)
    with httpx.Client(base_url=base_url, timeout=600) as client:
        patient = {"resourceType": "Patient", "id": CHILD, "gender": "female", "birthDate": born.isoformat()}
        r = client.put(f"/fhir/Patient/{CHILD}", content=fhir_json.dumps(patient), headers=FHIR_JSON)
        r.raise_for_status()
        entries = []
        for n in range(count):
            when = _at(day, n * 4)  # every 4 s from midnight: 5,000 fill 5.6 hours
            if n % 2:
                resource = _observation(f"hr-{n}", HEART_RATE, 118 + n % 9, "/min", when)
            else:
                resource = _observation(f"w-{n}", WEIGHT, round(9.0 + (n % 7) / 20, 2), "kg", when)
            entries.append({"resource": resource, "request": {"method": "PUT", "url": f"Observation/{resource['id']}"}})
        for first in range(0, len(entries), 250):
            bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries[first:first + 250]}
            r = client.post("/fhir", content=fhir_json.dumps(bundle), headers=FHIR_JSON)
            r.raise_for_status()
    return round(time.perf_counter() - started, 1)


def _posts(workload: str, day: dt.date, round_number: int, n: int) -> list[Request]:
    """`n` creates for the child, each later than every earlier one (afternoon, 1 ms apart per round)."""
    start = 12 * 3600 + round_number * 2 * 3600
    out = []
    for k in range(n):
        when = _at(day, start + k * 0.05)
        if workload == "weight":
            body = _observation(None, WEIGHT, round(9.2 + (k % 5) / 50, 2), "kg", when)
        else:
            body = _observation(None, HEART_RATE, 120 + k % 9, "/min", when)
        out.append(Request("POST", "/fhir/Observation", fhir_json.dumps(body)))
    return out


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


if __name__ == "__main__":
    raise SystemExit(main())
