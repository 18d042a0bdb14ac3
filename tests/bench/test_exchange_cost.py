"""A seconds-long run of the exchange benchmark, so it cannot rot. No timing assertions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_exchange_cost_prints_latency_and_ratios() -> None:
    cmd = [sys.executable, "-m", "bench.exchange_cost", "--db", "sqlite", "--visits", "3", "--subscriptions", "5",
           "--referrals", "3", "--rounds", "1", "--criteria", "mixed"]  # equality and SQL-judged criteria
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["latency_ms"]["count"] == 3 and report["latency_ms"]["p95"] >= report["latency_ms"]["p50"]
    assert report["push_latency_ms"]["count"] == 3  # to a partner clinic (bench.partner_push)
    visit = report["household_visit"]
    assert visit["subscriptions"] == 5 and visit["median_ratio_wall"] > 0 and visit["median_ratio_cpu"] > 0
