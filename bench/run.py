"""Benchmark Puente against floors measured in the same run; print JSON.

    uv run python -m bench.run --scale small --db postgres --workers 2 --out bench/results.json

See bench/README.md for what each workload and floor is, and what the numbers mean.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import floors, loaders, pg
from bench.driver import Load, Request, available_driver, run_workload
from bench.procs import ProcessTree, Server, free_port, postmaster
from bench.workloads import (
    Dataset,
    Sampler,
    big_transaction,
    everything_workload,
    floor_workloads,
    puente_workloads,
    warmup_workloads,
    write_workloads,
)
from fhir_mappings.fhir_json import dumps
from seed import Unit, children_for_resources, generate_units

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class Scale:
    children: int
    seconds: float  # per workload
    warmup: float  # per workload, not measured
    connections: int
    threads: int
    big_tx_runs: int
    big_tx_entries: int
    floors_twice: bool  # floors before and after Puente, to see the machine drift


SCALES = {
    "smoke": Scale(8, 1.0, 0.0, 8, 1, 1, 100, False),
    "small": Scale(300, 10.0, 2.0, 32, 2, 3, 1000, True),
    "programme": Scale(1300, 20.0, 3.0, 32, 2, 5, 1000, True),
    "1m": Scale(children_for_resources(1_000_000), 30.0, 5.0, 32, 2, 5, 1000, True),
}

# Which floor each Puente workload is compared with (all are also compared with the HTTP floor).
FLOOR_OF = {
    "create_observation": "insert", "household_visit": "insert", "read_by_id": "read",
    "patient_by_identifier": "read", "observation_search": "read", "referral_pull": "read",
    "everything": "read", "include_page": "read",
}

# Searches whose answer time the targets bound: also measured with one connection per worker, so
# the p95 is the time to answer, not the time queued behind 31 other clients on 2 cores.
ANSWER_TIME = ("referral_pull", "patient_by_identifier", "observation_search", "include_page")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    scale = SCALES[args.scale]
    scale = replace(scale, children=args.children or scale.children, seconds=args.seconds or scale.seconds,
                    connections=args.connections or scale.connections, threads=args.threads or scale.threads)
    driver = available_driver(args.driver)
    load = Load(scale.connections, scale.threads, scale.seconds)
    workdir = Path(tempfile.mkdtemp(prefix=f"puente-bench-{args.scale}-"))
    pg_problem = pg.unreachable_reason(args.pg_admin_dsn)
    if pg_problem and args.db == "postgres":
        raise SystemExit(f"PostgreSQL not reachable at {args.pg_admin_dsn}: {pg_problem} (or use --db sqlite)")

    report: dict[str, Any] = {"meta": _meta(args, scale, driver, workdir, pg_problem)}
    _log(f"bench: scale={args.scale} children={scale.children} db={args.db} workers={args.workers} "
         f"driver={driver} logs={workdir}")

    # 1. Sample the data set (and fill the floor table with the same resources).
    sampler = Sampler(args.seed)
    units = sampler(generate_units(scale.children, args.seed))
    floor_dsn = None
    if pg_problem is None:
        floor_dsn = pg.recreate(args.pg_admin_dsn, f"{args.db_prefix}_floor")
        rows = ((r["id"], dumps(r).decode()) for u in units for r in u.resources)
        asyncio.run(floors.prepare(floor_dsn, rows))
    else:
        for _ in units:
            pass
    ds = sampler.data
    report["meta"]["resources"] = ds.resources

    # 2. Floors, Puente, floors again.
    report["floors"] = _run_floors(args, ds, floor_dsn, driver, load, scale, workdir)
    report["puente"] = _run_puente(args, ds, driver, load, scale, workdir)
    if scale.floors_twice:
        report["floors_after"] = _run_floors(args, ds, floor_dsn, driver, load, scale, workdir)
    report["ratios"] = _ratios(report)
    report["targets"] = _targets(report)
    if not args.keep_db and pg_problem is None:
        for name in (f"{args.db_prefix}_floor", args.db_prefix):
            pg.drop(args.pg_admin_dsn, name)

    text = json.dumps(report, indent=2, ensure_ascii=False)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    sys.stdout.write(text + "\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    p.add_argument("--scale", choices=sorted(SCALES), default="small")
    p.add_argument("--db", choices=("postgres", "sqlite"), default="postgres", help="Puente's database")
    p.add_argument("--workers", type=int, default=2, help="server workers (Puente and floors alike)")
    p.add_argument("--driver", choices=("auto", "wrk", "python"), default="auto",
                   help="load generator: wrk if installed (auto), else bench.pyload")
    p.add_argument("--out", help="also write the JSON here")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--children", type=int, help="override the scale's cohort size")
    p.add_argument("--seconds", type=float, help="override the scale's seconds per workload")
    p.add_argument("--connections", type=int, help="override the scale's concurrent connections")
    p.add_argument("--threads", type=int, help="override the scale's wrk threads")
    p.add_argument("--loader", default="http",
                   help="'http' (transaction Bundles over the API) or 'module:function' (see bench/loaders.py)")
    p.add_argument("--load-concurrency", type=int, default=4)
    p.add_argument("--load-bundle", type=int, default=100, help="entries per loading Bundle")
    p.add_argument("--puente-cmd", default=None,
                   help="how to run the CLI (default: the venv's `puente`, else `uv run puente`)")
    p.add_argument("--soak", type=float, default=0.0,
                   help="also run a mixed read/create load this many seconds, sampling server memory")
    p.add_argument("--skip-puente", action="store_true", help="floors only")
    p.add_argument("--pg-admin-dsn", default=os.environ.get("BENCH_PG_ADMIN_DSN", pg.DEFAULT_ADMIN_DSN))
    p.add_argument("--db-prefix", default="puente_bench", help="name of the fresh databases")
    p.add_argument("--keep-db", action="store_true", help="keep the databases after the run")
    p.add_argument("--only", action="append", metavar="WORKLOAD",
                   help="run only this Puente workload (repeatable) and the floors it is compared with")
    return p


def _log(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


# ---- floors ------------------------------------------------------------------------------------


def _run_floors(args: argparse.Namespace, ds: Dataset, floor_dsn: str | None, driver: str, load: Load,
                scale: Scale, workdir: Path) -> dict[str, Any]:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "bench.floors:app", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(args.workers), "--no-access-log", "--log-level", "warning"]
    env = {"BENCH_FLOOR_DSN": floor_dsn} if floor_dsn else {}
    results: dict[str, Any] = {}
    with Server("floors", cmd, env, port, "/healthz", workdir, ROOT) as server:
        server.wait_healthy(30)
        for name, reqs in floor_workloads(ds).items():
            if args.only and name not in {"constant", *(FLOOR_OF.get(w) for w in args.only)}:
                continue
            if name != "constant" and floor_dsn is None:
                results[name] = {"skipped": "PostgreSQL not reachable"}
                continue
            results[name] = _measure(driver, server, name, reqs, load, scale,
                                     postmaster() if floor_dsn else None, args.workers)
    return results


BALANCE_ATTEMPTS = 3


def _balanced(result: dict[str, Any], workers: int) -> bool:
    """Did every worker get a fair share of the work?

    uvicorn's workers share one listening socket and a keep-alive connection stays with the worker
    that accepted it; when the load generator opens its connections at once, one worker sometimes
    takes nearly all of them and the run measures one core instead of `workers`. Real clients
    reconnect all the time, so such a run is an artefact: retry it.
    """
    if workers < 2:
        return True
    busy = result.get("server", {}).get("cpu_s_by_process", [])
    if not busy or busy[0] < 0.2:
        return True  # too little work to judge
    top = busy[:workers]
    return len(top) == workers and top[-1] >= 0.5 * top[0]


def _measure(driver: str, server: Server, name: str, reqs: list[Request], load: Load, scale: Scale,
             database: ProcessTree | None, workers: int, warmup: list[Request] | None = None) -> dict[str, Any]:
    if scale.warmup:
        run_workload(driver, server.base_url, warmup or reqs, replace(load, seconds=scale.warmup), None)
    for attempt in range(1, BALANCE_ATTEMPTS + 1):
        result = run_workload(driver, server.base_url, reqs, load, server.tree, database)
        result["attempt"] = attempt
        if _balanced(result, workers):
            break
        _log(f"  {server.name}:{name}: workers unevenly loaded {result['server']['cpu_s_by_process']}, again")
    result["valid"] = not result["errors"] and result["requests"] > 0
    _log(f"  {server.name}:{name}: {result['rps']}/s p50={result['latency_ms']['p50']}ms "
         f"p99={result['latency_ms']['p99']}ms errors={result['errors'] or 0}")
    return result


# ---- Puente ------------------------------------------------------------------------------------


def _puente_cmd(args: argparse.Namespace) -> list[str]:
    if args.puente_cmd:
        return shlex.split(args.puente_cmd)
    script = Path(sys.executable).with_name("puente")
    # Exactly what `uv run puente` runs once the environment is synced, minus the sync.
    return [str(script)] if script.exists() else ["uv", "run", "puente"]


class PuenteUnavailable(RuntimeError):
    """The CLI cannot serve at all (not installed, or no `serve` command yet): skip, don't fail."""


def _start_puente(cmd: list[str], port: int, workers: int, env: dict[str, str], workdir: Path) -> Server:
    serve = [*cmd, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    try:
        server = Server("puente", serve, env, port, "/healthz", workdir, ROOT)
    except FileNotFoundError as exc:
        raise PuenteUnavailable(f"{cmd[0]} not found") from exc
    try:
        server.wait_healthy(180)
    except RuntimeError:
        log = server.log_tail()
        server.stop()
        if server.proc.returncode == 2 and "No such command" in log:
            raise PuenteUnavailable(f"`{' '.join(cmd)}` has no serve command") from None
        raise
    return server


def _run_puente(args: argparse.Namespace, ds: Dataset, driver: str, load: Load, scale: Scale,
                workdir: Path) -> dict[str, Any]:
    cmd = _puente_cmd(args)
    if args.skip_puente:
        return {"skipped": "--skip-puente"}
    if args.db == "postgres":
        db_url = pg.sqlalchemy_url(pg.recreate(args.pg_admin_dsn, args.db_prefix))
    else:
        db_url = f"sqlite+aiosqlite:///{workdir / 'puente.db'}"
    port = free_port()
    env = {"PUENTE_DATABASE_URL": db_url, "PUENTE_AUTH": "off", "PUENTE_DATA_DIR": str(workdir / "data"),
           "PUENTE_BASE_URL": f"http://127.0.0.1:{port}"}
    results: dict[str, Any] = {"database_url": db_url.split("@")[-1]}
    try:
        server = _start_puente(cmd, port, args.workers, env, workdir)
    except PuenteUnavailable as exc:
        _log(f"  puente skipped: {exc}")
        return {"skipped": str(exc)}
    with server:
        results["load"] = _load(args, server, db_url, scale, ds)
        database = postmaster() if args.db == "postgres" else None
        workloads = {name: reqs for name, reqs in {**puente_workloads(ds), **write_workloads(ds)}.items()
                     if not args.only or name in args.only}
        warmups = warmup_workloads(ds)
        for name, reqs in workloads.items():
            results[name] = (_measure(driver, server, name, reqs, load, scale, database, args.workers,
                                      warmups.get(name))
                             if reqs else {"skipped": "the sample holds no data for it"})
        unsaturated = replace(load, connections=args.workers, threads=1)
        for name in ANSWER_TIME:
            if workloads.get(name):
                # balance is not judged here: with one connection per worker, where they land is luck
                results[f"{name}@{args.workers}"] = _measure(driver, server, name, workloads[name], unsaturated,
                                                             scale, database, workers=1)
        if args.only:
            return results
        results[f"transaction_{scale.big_tx_entries}"] = _big_transactions(server, ds, scale)
        everything = everything_workload(ds)
        status = _probe(server, everything[0]) if everything else 0
        results["everything"] = (_measure(driver, server, "everything", everything, load, scale, database,
                                          args.workers)
                                 if status == 200 else {"skipped": f"probe returned {status}"})
        results["export"] = _export(server)
        if args.soak:
            results["soak"] = _soak(driver, server, ds, load, args.soak)
        results["server_rss_mb_at_end"] = round(server.tree.rss_bytes() / 2**20, 1)
    return results


def _load(args: argparse.Namespace, server: Server, db_url: str, scale: Scale, ds: Dataset) -> dict[str, Any]:
    units: Iterator[Unit] = generate_units(scale.children, args.seed)
    started = time.monotonic()
    ds.load_started = datetime.now(UTC)
    if args.loader == "http":
        asyncio.run(loaders.http_load(server.base_url, units, total_hint=ds.resources,
                                      bundle_entries=args.load_bundle, concurrency=args.load_concurrency))
    else:
        asyncio.run(loaders.call_loader(loaders.import_loader(args.loader), units, db_url))
    ds.load_finished = datetime.now(UTC)
    seconds = time.monotonic() - started
    _log(f"  loaded {ds.resources:,} resources in {seconds:.1f}s")
    return {"method": args.loader, "resources": ds.resources, "seconds": round(seconds, 1),
            "resources_per_s": round(ds.resources / seconds, 1) if seconds else None}


def _probe(server: Server, request: Request) -> int:
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        return client.request(request.method, request.path, content=request.body or None).status_code


def _big_transactions(server: Server, ds: Dataset, scale: Scale) -> dict[str, Any]:
    seconds: list[float] = []
    statuses: list[int] = []
    with httpx.Client(base_url=server.base_url, timeout=300) as client:
        for i in range(scale.big_tx_runs):
            body = big_transaction(ds, i, scale.big_tx_entries)
            t0 = time.perf_counter()
            response = client.post("/fhir", content=body, headers={"Content-Type": "application/fhir+json"})
            seconds.append(round(time.perf_counter() - t0, 3))
            statuses.append(response.status_code)
    result = {"entries": scale.big_tx_entries, "runs": len(seconds), "seconds": seconds,
              "max_s": max(seconds), "statuses": statuses, "valid": all(s == 200 for s in statuses)}
    _log(f"  puente:transaction_{scale.big_tx_entries}: {seconds} statuses={statuses}")
    return result


def _export(server: Server, timeout: float = 600) -> dict[str, Any]:
    headers = {"Accept": "application/fhir+json", "Prefer": "respond-async"}
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        t0 = time.perf_counter()
        kick = client.get("/fhir/$export", headers=headers)
        if kick.status_code != 202 or "content-location" not in kick.headers:
            return {"skipped": f"kick-off returned {kick.status_code}"}
        status_url = kick.headers["content-location"]
        while time.perf_counter() - t0 < timeout:
            poll = client.get(status_url)
            if poll.status_code == 200:
                return {"seconds": round(time.perf_counter() - t0, 2), "files": len(poll.json().get("output", []))}
            if poll.status_code != 202:
                return {"error": f"status poll returned {poll.status_code}"}
            time.sleep(0.5)
    return {"error": f"not finished after {timeout:.0f}s"}


def _soak(driver: str, server: Server, ds: Dataset, load: Load, seconds: float) -> dict[str, Any]:
    import threading

    reqs = [r for pair in zip(puente_workloads(ds)["read_by_id"], write_workloads(ds)["create_observation"],
                              strict=False) for r in pair]
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        t0 = time.monotonic()
        while not stop.wait(5.0):
            samples.append((round(time.monotonic() - t0, 1), round(server.tree.rss_bytes() / 2**20, 1)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = run_workload(driver, server.base_url, reqs, replace(load, seconds=seconds), server.tree)
    finally:
        stop.set()
        sampler.join()
    result["rss_mb_samples"] = samples
    if len(samples) >= 4:
        first = samples[len(samples) // 4][1]  # after warm-up
        result["rss_growth_pct_after_first_quarter"] = round(100 * (samples[-1][1] - first) / first, 1)
    return result


# ---- summary -----------------------------------------------------------------------------------


def _floor_rps(report: dict[str, Any], name: str) -> float | None:
    values = [f[name]["rps"] for f in (report.get("floors"), report.get("floors_after"))
              if f and f.get(name, {}).get("rps")]
    return sum(values) / len(values) if values else None


def _ratios(report: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    puente = report.get("puente", {})
    http = _floor_rps(report, "constant")
    for name, floor in FLOOR_OF.items():
        result = puente.get(name, {})
        if not result.get("valid"):
            continue  # errors (e.g. an interaction not implemented yet) make a ratio meaningless
        base = _floor_rps(report, floor)
        if base:
            out[f"{name} / {floor}"] = round(result["rps"] / base, 3)
        if http:
            out[f"{name} / constant"] = round(result["rps"] / http, 3)
    return out


def _targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets (meant for --scale 1m on PostgreSQL), measured against this run."""
    puente = report.get("puente", {})
    ratios = report.get("ratios", {})
    workers = report.get("meta", {}).get("workers", 2)

    def valid(name: str) -> dict[str, Any]:
        result = puente.get(name, {})
        return result if result.get("valid") else {}

    def lat(name: str, q: str) -> float | None:
        return valid(name).get("latency_ms", {}).get(q)

    rows = [
        ("create_observation >= 0.6 x insert floor", ratios.get("create_observation / insert"), 0.6, ">="),
        ("create_observation p99 <= 100 ms", lat("create_observation", "p99"), 100, "<="),
        ("read_by_id >= 0.8 x read floor", ratios.get("read_by_id / read"), 0.8, ">="),
        ("household_visit (8 entries) >= 150/s", valid("household_visit").get("rps"), 150, ">="),
        ("1,000-entry transaction < 3 s", valid("transaction_1000").get("max_s"), 3, "<"),
        ("referral_pull p95 <= 50 ms (1 connection per worker)", lat(f"referral_pull@{workers}", "p95"), 50, "<="),
        ("patient_by_identifier p95 <= 50 ms (1 connection per worker)",
         lat(f"patient_by_identifier@{workers}", "p95"), 50, "<="),
        ("observation_search p95 <= 50 ms (1 connection per worker)",
         lat(f"observation_search@{workers}", "p95"), 50, "<="),
        ("include_page (100 + _include) p95 <= 150 ms (1 connection per worker)",
         lat(f"include_page@{workers}", "p95"), 150, "<="),
        ("referral_pull p95 <= 50 ms (all connections)", lat("referral_pull", "p95"), 50, "<="),
        ("patient_by_identifier p95 <= 50 ms (all connections)", lat("patient_by_identifier", "p95"), 50, "<="),
    ]
    out = []
    for name, measured, target, op in rows:
        met = None
        if measured is not None:
            met = {">=": measured >= target, "<=": measured <= target, "<": measured < target}[op]
        out.append({"target": name, "measured": measured, "met": met})
    return out


def _meta(args: argparse.Namespace, scale: Scale, driver: str, workdir: Path, pg_problem: str | None) -> dict[str, Any]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    tool = "python (bench.pyload)"
    if driver == "wrk":
        wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
        tool = (wrk.stdout or wrk.stderr).splitlines()[0] if (wrk.stdout or wrk.stderr) else "wrk"
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "scale": args.scale, "db": args.db, "workers": args.workers, "seed": args.seed,
        "children": scale.children, "seconds_per_workload": scale.seconds, "warmup_s": scale.warmup,
        "connections": scale.connections, "threads": scale.threads, "driver": tool,
        "machine": {"cpus": os.cpu_count(), "cpu_model": cpu_model, "memory_gb": mem_gb,
                    "os": platform.platform(), "python": platform.python_version(),
                    "postgres": None if pg_problem else pg.server_version(args.pg_admin_dsn),
                    "load_avg_at_start": os.getloadavg()},
        "git_commit": _git_commit(),
        "logs": str(workdir),
        "postgres_unreachable": pg_problem,
    }


def _git_commit() -> str | None:
    if not shutil.which("git"):
        return None
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return out.stdout.strip() or None


if __name__ == "__main__":
    raise SystemExit(main())
