"""A seconds-long run of the topic-subscription benchmark, so it cannot rot. No timing assertions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_topic_cost_prints_latency_and_catch_up() -> None:
    cmd = [sys.executable, "-m", "bench.topic_cost", "--db", "sqlite", "--referrals", "3", "--backlog", "5"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["latency_ms"]["count"] == 3 and report["latency_ms"]["p95"] >= report["latency_ms"]["p50"]
    assert report["catch_up"]["full-resource"]["events_read"] == 8  # every event, the first three too
