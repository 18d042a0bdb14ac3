"""The harness's bookkeeping: samples, ratios, targets, worker balance, request encoding."""

from __future__ import annotations

from datetime import date

from bench.driver import Request
from bench.pyload import encode_requests, percentile
from bench.run import _balanced, _ratios, _targets
from bench.workloads import Sampler, big_transaction, household_visit_bodies, household_visit_warmup
from clinical.growth import Indicator, growth_zscores
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
    subjects = [loads(b)["entry"][1]["resource"]["subject"]["reference"] for b in household_visit_bodies(data.data, 20)]
    assert len(subjects) == len(set(subjects)) == len(data.data.children)


def _child_day(body: bytes) -> tuple[str, str]:
    weight = loads(body)["entry"][1]["resource"]
    return weight["subject"]["reference"], weight["effectiveDateTime"][:10]


def test_no_household_visit_is_sent_twice_the_same_day() -> None:
    """The load generator cycles the bodies: a repeat would be the same child measured twice a day,
    which makes the rules undo the first visit's z-scores; no CHW's day does that."""
    data = Sampler(3)
    for _ in data(generate_units(20, 3)):
        pass
    visits = [_child_day(b) for b in household_visit_bodies(data.data, 100)]
    assert len(set(visits)) == 100
    days = sorted({day for _, day in visits}, reverse=True)
    assert len(days) == 5  # every child today, then every child yesterday, ...
    warmup = {_child_day(b) for b in household_visit_warmup(data.data, 30)}
    assert not {day for _, day in warmup} & set(days)


def test_household_visits_measure_plausible_children() -> None:
    """Weights and lengths fit the child's age and sex as in a real programme: few flags, no nonsense."""
    data = Sampler(5)
    for _ in data(generate_units(200, 5)):
        pass
    wasted = stunted = 0
    bodies = household_visit_bodies(data.data, 200)
    for body in bodies:
        weight, length = (e["resource"] for e in loads(body)["entry"][1:3])
        child = weight["subject"]["reference"].split("/", 1)[1]
        birth, sex = data.data.births[child]
        result = growth_zscores(
            sex="female" if sex == 2 else "male", birth_date=birth,
            measurement_date=date.fromisoformat(weight["effectiveDateTime"][:10]),
            weight_kg=weight["valueQuantity"]["value"], length_height_cm=length["valueQuantity"]["value"],
            recumbent=length["code"]["coding"][0]["code"] == "8306-3",
        )
        whz, haz = result.z(Indicator.WFLH), result.z(Indicator.LHFA)
        if whz is None or haz is None:
            continue  # five years old by the visit: past the growth standards
        assert abs(whz) < 5 and abs(haz) < 5
        wasted += whz < -2
        stunted += haz < -2
    assert wasted <= 0.06 * len(bodies)  # Peru: ~1 % of children under five are wasted
    assert 0.02 * len(bodies) <= stunted <= 0.3 * len(bodies)  # and ~12 % stunted


def test_requests_encode_for_both_generators() -> None:
    line = Request("POST", "/fhir/Observation", b'{"a":1}').line()
    assert line == 'POST\t/fhir/Observation\t{"a":1}\n'
    raw = encode_requests([line], "h:1")[0]
    assert raw.startswith(b"POST /fhir/Observation HTTP/1.1\r\nHost: h:1\r\n")
    assert raw.endswith(b'Content-Length: 7\r\n\r\n{"a":1}')
    assert encode_requests(["GET\t/x\t\n"], "h")[0].endswith(b"\r\n\r\n")
    assert percentile([1, 2, 3, 4], 50) == 2.0 and percentile([], 99) == 0.0
