"""Measure/$evaluate-measure against the hand-computed answers of tests/programme/cohort.py."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from tests.programme.conftest import admin_headers, chw_headers

POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"


async def evaluate(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    measure: str,
    start: str,
    end: str,
    subject: str = "Location/dist",
    report_type: str | None = None,
) -> dict[str, Any]:
    params = {"periodStart": start, "periodEnd": end, "subject": subject}
    if report_type:
        params["reportType"] = report_type
    r = await http.get(f"/fhir/Measure/{measure}/$evaluate-measure", params=params, headers=headers)
    assert r.status_code == 200, r.text
    report: dict[str, Any] = r.json()
    assert report["resourceType"] == "MeasureReport" and report["status"] == "complete"
    assert report["measure"] == f"https://puente.example.org/fhir/Measure/{measure}"
    return report


def counts(report: dict[str, Any]) -> dict[str, tuple[int, int, float | None]]:
    """group code -> (denominator, numerator, score)."""
    out = {}
    for group in report["group"]:
        pops = {p["code"]["coding"][0]["code"]: p["count"] for p in group["population"]}
        assert all(p["code"]["coding"][0]["system"] == POPULATION for p in group["population"])
        out[group["code"]["coding"][0]["code"]] = (
            pops["denominator"],
            pops["numerator"],
            group.get("measureScore", {}).get("value"),
        )
    return out


async def test_screening_coverage(loaded: httpx.AsyncClient, auth_app: FastAPI) -> None:
    # under five on 11-30: nino-anemia, nino-tamizaje, recien-nacido, nino-referido; weighed in November: the newborn
    report = await evaluate(loaded, admin_headers(auth_app), "puente-screening-coverage", "2026-11-01", "2026-11-30")
    assert counts(report) == {"coverage": (4, 1, 0.25)}
    assert report["period"] == {"start": "2026-11-01", "end": "2026-11-30"}
    assert report["type"] == "summary" and report["subject"] == {"reference": "Location/dist"}
    # September to November: nino-referido (09-01), nino-anemia (10-15) and the newborn (11-23)
    assert counts(
        await evaluate(loaded, admin_headers(auth_app), "puente-screening-coverage", "2026-09-01", "2026-11-30")
    ) == {"coverage": (4, 3, 0.75)}


async def test_anaemia_prevalence_by_severity(loaded: httpx.AsyncClient, auth_app: FastAPI) -> None:
    # hemoglobins in Sep-Nov at 6-59 months: nino-anemia 9.0 (moderate), nino-referido 12.5 (none)
    report = await evaluate(loaded, admin_headers(auth_app), "puente-anaemia-prevalence", "2026-09-01", "2026-11-30")
    assert counts(report) == {
        "anaemia": (2, 1, 0.5),
        "mild": (2, 0, 0.0),
        "moderate": (2, 1, 0.5),
        "severe": (2, 0, 0.0),
    }


async def test_stunting_wasting_underweight(loaded: httpx.AsyncClient, auth_app: FastAPI) -> None:
    admin = admin_headers(auth_app)
    # lhfa: nino-anemia -2.75, nino-referido -3.39; wflh -0.77 and -0.18; wfa -1.92 and -2.11, and the
    # newborn's weight alone (3.2 kg at 3 days) has a wfa too
    stunting = await evaluate(loaded, admin, "puente-stunting-prevalence", "2026-09-01", "2026-11-30")
    assert counts(stunting) == {"moderate-or-severe": (2, 2, 1.0), "severe": (2, 1, 0.5)}
    underweight = await evaluate(loaded, admin, "puente-underweight-prevalence", "2026-09-01", "2026-11-30")
    assert counts(underweight) == {"moderate-or-severe": (3, 1, 0.3333), "severe": (3, 0, 0.0)}
    wasting = await evaluate(loaded, admin, "puente-wasting-prevalence", "2026-09-01", "2026-11-30")
    assert counts(wasting) == {"moderate-or-severe": (2, 0, 0.0), "severe": (2, 0, 0.0)}
    # one sector only
    s1 = await evaluate(loaded, admin, "puente-stunting-prevalence", "2026-09-01", "2026-11-30", "Location/s1")
    assert counts(s1) == {"moderate-or-severe": (1, 1, 1.0), "severe": (1, 0, 0.0)}


async def test_vaccine_coverage_per_dose(loaded: httpx.AsyncClient, auth_app: FastAPI) -> None:
    report = counts(
        await evaluate(loaded, admin_headers(auth_app), "puente-vaccine-coverage", "2026-11-01", "2026-11-30")
    )
    assert report["bcg-1"] == (4, 1, 0.25)  # only the newborn had BCG
    assert report["hepb-birth-1"] == (4, 1, 0.25)
    assert report["dtp-1"] == (3, 0, 0.0)  # the newborn is not two months old
    assert report["dtp-5"] == (0, 0, None)  # 4 years: nobody that old


async def test_referral_completion_and_time(loaded: httpx.AsyncClient, auth_app: FastAPI) -> None:
    # sr-open (10-05, open), sr-anemia (10-16, completed 10-20: 4 days), sr-done (11-02, completed 11-12: 10 days)
    report = await evaluate(loaded, admin_headers(auth_app), "puente-referral-completion", "2026-10-01", "2026-11-30")
    assert counts(report) == {"completion": (3, 2, 0.6667), "time-to-completion": (2, 2, 7.0)}
    # November only: sr-done
    november = await evaluate(loaded, admin_headers(auth_app), "puente-referral-completion", "2026-11-01", "2026-11-30")
    assert counts(november) == {"completion": (1, 1, 1.0), "time-to-completion": (1, 1, 10.0)}
    days = next(g for g in report["group"] if g["code"]["coding"][0]["code"] == "time-to-completion")
    assert days["measureScore"]["unit"] == "d"


async def test_subject_list(loaded: httpx.AsyncClient, auth_app: FastAPI) -> None:
    report = await evaluate(
        loaded,
        admin_headers(auth_app),
        "puente-anaemia-prevalence",
        "2026-09-01",
        "2026-11-30",
        report_type="subject-list",
    )
    assert report["type"] == "subject-list"
    lists = {f"#{c['id']}": c for c in report["contained"]}
    group = report["group"][0]
    numerator = next(p for p in group["population"] if p["code"]["coding"][0]["code"] == "numerator")
    members = [e["item"]["reference"] for e in lists[numerator["subjectResults"]["reference"]]["entry"]]
    assert members == ["Patient/nino-anemia"]


async def test_a_chw_counts_only_her_patients(loaded: httpx.AsyncClient, auth_app: FastAPI) -> None:
    headers = await chw_headers(loaded, auth_app, "rosa", "Practitioner/chw-b")
    report = await evaluate(loaded, headers, "puente-stunting-prevalence", "2026-09-01", "2026-11-30")
    assert counts(report) == {"moderate-or-severe": (1, 1, 1.0), "severe": (1, 1, 1.0)}  # nino-referido only


async def test_measures_are_readable_and_bad_input_is_refused(loaded: httpx.AsyncClient, auth_app: FastAPI) -> None:
    admin = admin_headers(auth_app)
    measure = (await loaded.get("/fhir/Measure/puente-anaemia-prevalence", headers=admin)).json()
    assert measure["resourceType"] == "Measure" and measure["status"] == "active"
    assert measure["scoring"]["coding"][0]["code"] == "proportion" and len(measure["group"]) == 4
    base = "/fhir/Measure/puente-screening-coverage/$evaluate-measure"
    good = {"periodStart": "2026-11-01", "periodEnd": "2026-11-30", "subject": "Location/dist"}
    for params, status in (
        ({**good, "periodStart": "2026-02-30"}, 400),
        ({**good, "periodEnd": "2026-10-01"}, 400),
        ({"periodStart": "2026-11-01", "subject": "Location/dist"}, 400),
        ({**good, "subject": "Patient/x"}, 400),
        ({**good, "reportType": "individual"}, 400),
        ({**good, "subject": "Location/nowhere"}, 404),
    ):
        r = await loaded.get(base, params=params, headers=admin)
        assert r.status_code == status, (params, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"
    r = await loaded.get("/fhir/Measure/unknown/$evaluate-measure", params=good, headers=admin)
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
