"""The synthetic programme: deterministic, valid R4, referentially sound, and plausible."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import date
from functools import cache
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhir_mappings.fhir_json import dumps, loads
from seed import generate_programme, generate_units
from seed.codes import SID_DNI
from seed.generator import RESOURCES_PER_CHILD
from seed.growth import length_cm, lms, weight_kg, weight_table
from seed.referrals import SERVICE_REQUEST_STATUS, TASK_STATES

Resource = dict[str, Any]


@cache
def cohort(children: int, seed: int) -> tuple[Resource, ...]:
    return tuple(generate_programme(children, seed))


def digest(resources: Iterator[Resource] | tuple[Resource, ...]) -> str:
    h = hashlib.sha256()
    for r in resources:
        h.update(dumps(r))
        h.update(b"\n")
    return h.hexdigest()


def references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "reference" and isinstance(v, str):
                yield v
            else:
                yield from references(v)
    elif isinstance(value, list):
        for v in value:
            yield from references(v)


def by_type(resources: tuple[Resource, ...], resource_type: str) -> list[Resource]:
    return [r for r in resources if r["resourceType"] == resource_type]


def test_every_resource_of_a_small_cohort_is_valid_r4() -> None:
    for resource in cohort(60, 11):
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_same_seed_gives_the_same_bytes_even_in_another_process() -> None:
    here = digest(generate_programme(40, 5))
    assert digest(generate_programme(40, 5)) == here
    code = (
        "import hashlib, sys; from seed import generate_programme; from fhir_mappings.fhir_json import dumps\n"
        "h = hashlib.sha256()\n"
        "for r in generate_programme(40, 5): h.update(dumps(r)); h.update(b'\\n')\n"
        "sys.stdout.write(h.hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert other.stdout == here


def test_different_seeds_differ() -> None:
    assert digest(generate_programme(40, 5)) != digest(generate_programme(40, 6))


def test_a_smaller_cohort_is_a_prefix_of_a_larger_one() -> None:
    small = list(generate_units(30, 9))
    large = list(generate_units(300, 9))
    # All but the last household (trimmed to hit the exact child count) are identical.
    assert [u.resources for u in small[:-1]] == [u.resources for u in large[: len(small) - 1]]


def test_ids_are_unique_and_references_point_backwards() -> None:
    seen: set[str] = set()
    for resource in cohort(60, 11):
        key = f"{resource['resourceType']}/{resource['id']}"
        assert key not in seen
        for reference in references(resource):
            assert reference in seen, f"{key} refers to {reference} before it exists"
        seen.add(key)


def test_dates_never_pass_as_of_except_planned_visits() -> None:
    as_of = date(2025, 3, 10)
    for r in generate_programme(80, 3, as_of=as_of):
        when = r.get("effectiveDateTime") or r.get("occurrenceDateTime") or r.get("authoredOn")
        if r["resourceType"] == "Encounter" and r["status"] != "planned":
            when = r["period"]["start"]
        elif r["resourceType"] == "MedicationStatement":
            when = r["effectivePeriod"]["start"]
        elif r["resourceType"] == "Patient":
            when = r["birthDate"]
        if when:
            assert date.fromisoformat(when[:10]) <= as_of, r


def test_programme_staff_places_and_exact_child_count() -> None:
    resources = cohort(60, 11)
    counts = Counter(r["resourceType"] for r in resources)
    assert counts["Practitioner"] == 77 and counts["PractitionerRole"] == 77 and counts["CareTeam"] == 8
    roles = Counter(r["code"][0]["coding"][0]["code"] for r in by_type(resources, "PractitionerRole"))
    assert roles == {"chw": 69, "supervisor": 8}
    assert sum(len(t["participant"]) for t in by_type(resources, "CareTeam")) == 77
    names = {r["name"] for r in by_type(resources, "Organization")}
    assert {"C.S. La Esperanza", "P.S. Jerusalén", "Hospital Regional Docente de Trujillo"} <= names
    areas = [r for r in by_type(resources, "Location") if r["physicalType"]["coding"][0]["code"] == "area"]
    assert "Nuevo Jerusalén" in {r["name"] for r in areas}
    assert all(70 <= r["position"]["altitude"] <= 120 for r in areas)
    children = {r["patient"]["reference"] for r in by_type(resources, "RelatedPerson")}
    assert len(children) == 60
    assert all(r["relationship"][0]["coding"][0]["code"] == "MTH" for r in by_type(resources, "RelatedPerson"))


def test_identifiers_unique_dni_and_some_people_without_one() -> None:
    patients = by_type(cohort(600, 2), "Patient")
    dnis = [i["value"] for p in patients for i in p.get("identifier", []) if i["system"] == SID_DNI]
    assert len(dnis) == len(set(dnis))
    assert all(len(v) == 8 and v.isdigit() for v in dnis)
    kinds = Counter(i["type"]["coding"][0]["code"] for p in patients for i in p.get("identifier", []))
    assert {"DNI", "CE", "PTP", "CNV"} <= set(kinds)
    assert any("identifier" not in p for p in patients)


def test_every_task_state_and_consistent_service_requests() -> None:
    resources = cohort(60, 11)
    requests = {r["id"]: r for r in by_type(resources, "ServiceRequest")}
    tasks = by_type(resources, "Task")
    assert {t["status"] for t in tasks} == set(TASK_STATES)
    for task in tasks:
        request = requests[task["focus"]["reference"].split("/")[1]]
        assert request["status"] == SERVICE_REQUEST_STATUS[task["status"]]
        assert task["owner"] == request["performer"][0]
        assert request["reasonReference"][0]["reference"].startswith("Observation/")


def test_pregnancies_visits_vaccines_and_iron() -> None:
    resources = cohort(60, 11)
    pregnancies = [r for r in by_type(resources, "Condition") if r["code"]["coding"][0]["code"] == "77386006"]
    assert pregnancies and any(p["clinicalStatus"]["coding"][0]["code"] == "active" for p in pregnancies)
    codes = Counter(r["code"]["coding"][0]["code"] for r in by_type(resources, "Observation"))
    assert {"82810-3", "11778-8", "29463-7", "8306-3", "8302-2", "718-7"} <= set(codes)
    visits = [e for e in by_type(resources, "Encounter") if e["type"][0]["coding"][0]["code"] == "prenatal-home-visit"]
    assert len(visits) > len(pregnancies)
    vaccines = {i["vaccineCode"]["coding"][0]["code"] for i in by_type(resources, "Immunization")}
    assert {"BCG", "PENTA", "SPR"} <= vaccines
    iron = by_type(resources, "MedicationStatement")
    assert any(m["medicationCodeableConcept"]["coding"][0]["code"] == "B03AA07" for m in iron)


def _z(lms: tuple[float, float, float], y: float) -> float:
    big_l, m, s = lms
    return ((y / m) ** big_l - 1) / (s * big_l)


def test_distributions_are_plausible() -> None:
    births: dict[str, tuple[date, int]] = {}
    hb: list[bool] = []
    lengths: dict[str, tuple[str, float, int, int]] = {}
    weights: dict[str, float] = {}
    for r in cohort(1500, 4):
        if r["resourceType"] == "Patient":
            births[r["id"]] = (date.fromisoformat(r["birthDate"]), 1 if r["gender"] == "male" else 2)
        elif r["resourceType"] == "Observation" and "valueQuantity" in r and "encounter" in r:
            born, sex = births[r["subject"]["reference"].split("/")[1]]
            age = (date.fromisoformat(r["effectiveDateTime"][:10]) - born).days
            code, value = r["code"]["coding"][0]["code"], r["valueQuantity"]["value"]
            if code == "718-7" and 183 <= age < 1095:
                hb.append(value < (10.5 if age < 730 else 11.0))
            elif code in ("8306-3", "8302-2"):
                lengths[r["encounter"]["reference"]] = (code, value, age, sex)
            elif code == "29463-7" and age < 1826:
                weights[r["encounter"]["reference"]] = value
    anaemia = sum(hb) / len(hb)
    assert 0.33 <= anaemia <= 0.48, anaemia  # ENDES 2018-2024: 38.8-43.7 %
    stunted = wasted = 0
    for encounter, (code, length, age, sex) in lengths.items():
        if encounter not in weights:
            continue
        if age < 731 and code == "8302-2":
            length += 0.7
        elif age >= 731 and code == "8306-3":
            length -= 0.7
        stunted += _z(lms("lhfa", sex, age), length) < -2
        wasted += _z(lms(weight_table(age), sex, length), weights[encounter]) < -2
    assert 0.06 <= stunted / len(lengths) <= 0.2
    assert 0.002 <= wasted / len(lengths) <= 0.04


def test_resources_per_child_constant_matches_the_generator() -> None:
    per_child = len(cohort(1500, 4)) / 1500
    assert abs(per_child - RESOURCES_PER_CHILD) / RESOURCES_PER_CHILD < 0.1


def test_round_trips_through_fhir_json() -> None:
    # What the server stores and serves must be what the loader sent (decimals come back exact).
    for r in cohort(60, 11)[:500]:
        assert dumps(loads(dumps(r))) == dumps(r)


@pytest.mark.parametrize("children", [0, 1])
def test_tiny_cohorts(children: int) -> None:
    resources = list(generate_programme(children, 1))
    assert len(by_type(tuple(resources), "RelatedPerson")) == children


def test_the_median_child_has_the_who_median() -> None:
    """The generator's curves are clinical's WHO tables (lhfa, wfl, wfh), the ones children are scored with."""
    assert length_cm(1, 0, 0.0) == pytest.approx(49.8842)
    assert length_cm(2, 365, 0.0) == pytest.approx(74.0, abs=0.1)
    assert weight_kg(1, 300, 70.0, 0.0) == pytest.approx(8.4227)  # wflanthro: boys, 70 cm
    assert length_cm(1, 400, -2.0) < length_cm(1, 400, 0.0)
