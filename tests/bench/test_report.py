"""The harness's bookkeeping: samples, ratios, targets, worker balance, request encoding."""

from __future__ import annotations

from bench.driver import Request
from bench.pyload import encode_requests, percentile
from bench.run import _balanced, _ratios, _targets
from bench.workloads import Sampler, big_transaction, household_visit_bodies
from fhir_mappings.fhir_json import loads
from seed import generate_units


def _result(rps: float, valid: bool = True, p95: float = 10.0) -> dict[str, object]:
    return {"rps": rps, "valid": valid, "latency_ms": {"p50": 1.0, "p95": p95, "p99": 20.0}}


def test_ratios_use_the_mean_floor_and_skip_invalid_workloads() -> None:
    report = {
        "floors": {"constant": _result(4000), "insert": _result(1000), "read": _result(2000)},
        "floors_after": {"constant": _result(4000), "insert": _result(1400), "read": _result(2000)},
        "puente": {"create_observation": _result(600), "read_by_id": _result(1000, valid=False)},
    }
    ratios = _ratios(report)
    assert ratios == {"create_observation / insert": 0.5, "create_observation / constant": 0.15}
    report["ratios"] = ratios
    targets = {t["target"]: t for t in _targets(report)}
    assert targets["create_observation >= 0.6 x insert floor"]["met"] is False
    assert targets["read_by_id >= 0.8 x read floor"]["met"] is None  # invalid: not measured


def test_lopsided_workers_are_detected() -> None:
    def run(*cpu: float) -> dict[str, object]:
        return {"server": {"cpu_s_by_process": list(cpu)}}

    assert _balanced(run(2.0, 1.8), 2)
    assert not _balanced(run(2.5, 0.15), 2)
    assert not _balanced(run(2.5), 2)
    assert _balanced(run(2.5), 1)
    assert _balanced(run(0.05), 2)  # too little work to judge


def test_sampler_passes_units_through_and_samples_ids() -> None:
    sampler = Sampler(3, size=50)
    units = list(sampler(generate_units(40, 3)))
    assert [len(u.resources) for u in units] == [len(u.resources) for u in generate_units(40, 3)]
    data = sampler.data
    assert len(data.children) == 40 and len(data.observations) == 50
    assert len(data.facilities) == 5 and len(data.chws) == 69
    assert data.resources == sum(len(u.resources) for u in units)


def test_visit_and_big_transactions_are_transaction_bundles_with_internal_references() -> None:
    data = Sampler(3)
    for _ in data(generate_units(20, 3)):
        pass
    visit = loads(household_visit_bodies(data.data, 1)[0])
    assert visit["type"] == "transaction" and len(visit["entry"]) == 8
    urns = {e["fullUrl"] for e in visit["entry"]}
    task = visit["entry"][-1]["resource"]
    assert task["focus"]["reference"] in urns
    assert len(loads(big_transaction(data.data, 0))["entry"]) == 1000
    # A day of visits: each child once.
    subjects = [loads(b)["entry"][1]["resource"]["subject"]["reference"] for b in household_visit_bodies(data.data)]
    assert len(subjects) == len(set(subjects)) == len(data.data.children)


def test_requests_encode_for_both_generators() -> None:
    line = Request("POST", "/fhir/Observation", b'{"a":1}').line()
    assert line == 'POST\t/fhir/Observation\t{"a":1}\n'
    raw = encode_requests([line], "h:1")[0]
    assert raw.startswith(b"POST /fhir/Observation HTTP/1.1\r\nHost: h:1\r\n")
    assert raw.endswith(b'Content-Length: 7\r\n\r\n{"a":1}')
    assert encode_requests(["GET\t/x\t\n"], "h")[0].endswith(b"\r\n\r\n")
    assert percentile([1, 2, 3, 4], 50) == 2.0 and percentile([], 99) == 0.0
