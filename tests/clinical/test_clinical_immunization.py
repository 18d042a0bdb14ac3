"""Immunization forecast: on-time, late, missing, early and catch-up histories; codes; pregnancy."""

from __future__ import annotations

import datetime as dt

import pytest

from clinical import (
    AdministeredDose,
    DoseStatus,
    ForecastStatus,
    codes,
    forecast_immunizations,
    forecast_pregnancy_immunizations,
    gestational_age_days,
    load_schedule,
)
from clinical.dates import add_months

B = dt.date(2024, 1, 15)
D = dt.date
DUE, OVERDUE, COMPLETE, NOT_YET, AGED_OUT = (ForecastStatus.DUE, ForecastStatus.OVERDUE, ForecastStatus.COMPLETE,
                                             ForecastStatus.NOT_YET_DUE, ForecastStatus.AGED_OUT)


def at(months: int) -> dt.date:
    return add_months(B, months)


def doses(*pairs: tuple[str, dt.date]) -> list[AdministeredDose]:
    return [AdministeredDose(code, when, id=f"imm-{i}") for i, (code, when) in enumerate(pairs)]


def forecast(assessment: dt.date, *pairs: tuple[str, dt.date], birth: dt.date = B):
    return forecast_immunizations(birth_date=birth, assessment_date=assessment, doses=doses(*pairs))


ON_TIME = [
    ("BCG", B), ("HVB", B),
    *[(v, at(2)) for v in ("PENTA", "IPV", "ROTA", "NEUMO")],
    *[(v, at(4)) for v in ("PENTA", "IPV", "ROTA", "NEUMO")],
    *[(v, at(6)) for v in ("PENTA", "APO", "INFLUENZA-PED")],
    ("INFLUENZA-PED", at(7)),
    *[(v, at(12)) for v in ("SPR", "VARICELA", "NEUMO")],
    *[(v, at(15)) for v in ("AMA", "HVA")],
    *[(v, at(18)) for v in ("SPR", "DPT", "APO")],
]


def test_on_time_history_is_complete_except_the_four_year_boosters():
    result = forecast(D(2025, 9, 1), *ON_TIME)
    assert not result.warnings
    assert all(e.status is DoseStatus.VALID for e in result.evaluations)
    statuses = {r.series_id: r.status for r in result.recommendations}
    assert statuses == {
        "bcg": COMPLETE, "hepb-birth": COMPLETE, "dtp": NOT_YET, "polio": NOT_YET, "rotavirus": COMPLETE,
        "pneumococcal": COMPLETE, "influenza-infant": COMPLETE, "mmr": COMPLETE, "varicella": COMPLETE,
        "yellow-fever": COMPLETE, "hepa": COMPLETE,
    }
    dtp = result.for_series("dtp")
    assert (dtp.dose_number, dtp.valid_doses, dtp.series_doses) == (5, 4, 5)
    assert (dtp.earliest, dtp.due, dtp.overdue) == (at(48), at(48), at(49))
    assert dtp.latest == at(84) - dt.timedelta(days=1)
    assert [v.code for v in dtp.vaccines] == ["DPT"]
    assert not dtp.can_give_now
    assert len(dtp.supporting_doses) == 4


def test_nothing_given_at_ten_months():
    result = forecast(D(2024, 11, 15))
    bcg = result.for_series("bcg")
    assert bcg.status is OVERDUE and bcg.can_give_now
    assert (bcg.earliest, bcg.due, bcg.overdue) == (B, B, D(2024, 1, 16))
    # the birth dose of hepatitis B has a 7-day window; the pentavalent series covers hepatitis B later
    assert result.for_series("hepb-birth").status is AGED_OUT
    assert result.for_series("hepb-birth").latest == D(2024, 1, 21)
    dtp = result.for_series("dtp")
    assert dtp.status is OVERDUE and dtp.dose_number == 1
    assert (dtp.earliest, dtp.due, dtp.overdue) == (D(2024, 2, 26), at(2), at(3))
    rota = result.for_series("rotavirus")
    assert rota.status is AGED_OUT and rota.latest == D(2024, 7, 14) and not rota.can_give_now
    assert result.for_series("influenza-infant").status is OVERDUE
    assert result.for_series("mmr").status is NOT_YET
    yellow_fever = result.for_series("yellow-fever")
    assert yellow_fever.status is NOT_YET and yellow_fever.can_give_now  # minimum 9 months, due at 15
    catch_up = {w.series_id for w in result.warnings if w.code == "catch-up"}
    assert catch_up == {"bcg", "dtp", "polio", "pneumococcal", "influenza-infant"}


@pytest.mark.parametrize(("assessment", "status"), [
    (D(2024, 2, 25), NOT_YET), (D(2024, 3, 14), NOT_YET), (D(2024, 3, 15), DUE), (D(2024, 4, 14), DUE),
    (D(2024, 4, 15), OVERDUE),
])
def test_status_changes_on_the_due_and_overdue_dates(assessment, status):
    dtp = forecast(assessment).for_series("dtp")
    assert dtp.status is status
    assert dtp.can_give_now is (assessment >= D(2024, 2, 26))


def test_late_dose_counts_with_a_warning_and_shifts_the_next_one():
    result = forecast(D(2024, 7, 1), ("PENTA", D(2024, 6, 15)))
    evaluation = next(e for e in result.evaluations if e.series_id == "dtp")
    assert evaluation.status is DoseStatus.VALID and evaluation.reasons == ("late",)
    late = [w for w in result.warnings if w.code == "late-dose"]
    assert len(late) == 1 and late[0].dose_id == "imm-0" and late[0].dose_number == 1
    dtp = result.for_series("dtp")
    assert dtp.dose_number == 2
    assert (dtp.earliest, dtp.due, dtp.overdue) == (D(2024, 7, 13), D(2024, 8, 15), D(2024, 9, 15))
    assert dtp.status is NOT_YET and not dtp.can_give_now


def test_catch_up_of_a_late_child_never_refuses():
    # first pentavalent at 3 years: still recommended, and the next ones follow at minimum intervals
    result = forecast(at(37), ("PENTA", at(36)))
    dtp = result.for_series("dtp")
    assert dtp.status is NOT_YET and dtp.dose_number == 2
    assert dtp.earliest == at(36) + dt.timedelta(weeks=4)
    assert dtp.due == at(38)
    behind = forecast(at(40), ("PENTA", at(36)))
    assert behind.for_series("dtp").status is OVERDUE
    assert any(w.code == "catch-up" and w.series_id == "dtp" for w in behind.warnings)


def test_dose_before_minimum_age_does_not_count():
    result = forecast(D(2024, 3, 20), ("PENTA", D(2024, 2, 20)))
    evaluation = next(e for e in result.evaluations if e.series_id == "dtp")
    assert evaluation.status is DoseStatus.NOT_VALID and evaluation.reasons == ("before-minimum-age",)
    assert any(w.code == "early-dose" for w in result.warnings)
    dtp = result.for_series("dtp")
    assert dtp.dose_number == 1 and dtp.status is DUE and dtp.valid_doses == 0


def test_dose_before_minimum_interval_does_not_count():
    result = forecast(D(2024, 4, 10), ("PENTA", at(2)), ("PENTA", D(2024, 4, 5)))
    second = [e for e in result.evaluations if e.series_id == "dtp"][1]
    assert second.status is DoseStatus.NOT_VALID and second.reasons == ("before-minimum-interval",)
    dtp = result.for_series("dtp")
    assert dtp.dose_number == 2 and dtp.earliest == D(2024, 4, 12)


def test_rotavirus_after_the_maximum_age_does_not_count():
    result = forecast(D(2024, 8, 1), ("ROTA", D(2024, 7, 20)))
    evaluation = next(e for e in result.evaluations if e.series_id == "rotavirus")
    assert evaluation.status is DoseStatus.NOT_VALID and evaluation.reasons == ("after-maximum-age",)
    assert result.for_series("rotavirus").status is AGED_OUT


def test_rotavirus_second_dose_window():
    result = forecast(D(2024, 8, 1), ("ROTA", D(2024, 7, 1)))
    rota = result.for_series("rotavirus")
    assert rota.dose_number == 2 and rota.latest == D(2024, 9, 14)
    assert rota.earliest == D(2024, 7, 29)


def test_non_strict_maximum_age_counts_with_a_warning():
    result = forecast(D(2029, 2, 1), ("BCG", D(2029, 1, 16)))
    assert result.for_series("bcg").status is COMPLETE
    assert [w.code for w in result.warnings if w.series_id == "bcg"] == ["after-maximum-age"]


def test_pneumococcal_catch_up_starting_at_14_months_needs_two_doses():
    first = at(14)
    result = forecast(first + dt.timedelta(days=5), ("NEUMO", first))
    pcv = result.for_series("pneumococcal")
    # dose 2 (skipped from 12 months) is not needed: the booster follows 8 weeks after the first dose
    assert pcv.dose_number == 3 and pcv.earliest == first + dt.timedelta(weeks=8)
    assert pcv.status is NOT_YET
    done = forecast(at(17), ("NEUMO", first), ("NEUMO", first + dt.timedelta(weeks=8)))
    assert done.for_series("pneumococcal").status is COMPLETE
    assert [e.dose_number for e in done.evaluations if e.series_id == "pneumococcal"] == [1, 3]


def test_pneumococcal_catch_up_from_24_months_is_a_single_dose():
    assessment = at(25)
    pcv = forecast(assessment).for_series("pneumococcal")
    assert pcv.dose_number == 3 and pcv.status is OVERDUE and pcv.can_give_now
    assert forecast(at(26), ("NEUMO", assessment)).for_series("pneumococcal").status is COMPLETE


def test_pneumococcal_dose_two_skipped_when_it_would_fall_after_12_months():
    result = forecast(D(2024, 12, 25), ("NEUMO", D(2024, 12, 20)))  # first dose at 11 months 5 days
    pcv = result.for_series("pneumococcal")
    assert pcv.dose_number == 3  # dose 2 could only be given from 2025-01-17, after 12 months
    assert pcv.earliest == D(2025, 2, 14)
    # a first dose at 10 months 25 days leaves time for dose 2 before 12 months
    earlier = forecast(D(2024, 12, 15), ("NEUMO", D(2024, 12, 10))).for_series("pneumococcal")
    assert earlier.dose_number == 2 and earlier.earliest == D(2025, 1, 7)


def test_extra_wrong_and_future_doses():
    result = forecast(at(3), ("BCG", B), ("BCG", D(2024, 2, 1)), ("DPT", at(2)), ("PENTA", at(5)))
    bcg = [e.status for e in result.evaluations if e.series_id == "bcg"]
    assert bcg == [DoseStatus.VALID, DoseStatus.EXTRA]
    wrong = next(e for e in result.evaluations if e.series_id == "dtp")
    assert wrong.status is DoseStatus.NOT_VALID and wrong.reasons == ("wrong-vaccine",)
    assert {w.code for w in result.warnings} >= {"wrong-vaccine", "future-dose"}
    assert result.for_series("dtp").valid_doses == 0


def test_hexavalent_counts_for_dtp_and_polio():
    result = forecast(at(3), ("HEXA", at(2)))
    assert result.for_series("dtp").valid_doses == 1
    assert result.for_series("polio").valid_doses == 1


# ----------------------------------------------------------------------------- codes


def test_cvx_and_local_codes_map_to_the_same_vaccine():
    cvx = codes.CVX
    result = forecast_immunizations(birth_date=B, assessment_date=at(3), doses=[
        AdministeredDose("19", B, cvx), AdministeredDose("8", B, cvx),
        AdministeredDose("102", at(2), cvx), AdministeredDose("999", at(2), cvx, id="x"),
        AdministeredDose("XYZ", at(2), id="y"), AdministeredDose("PENTA", at(2), "http://snomed.info/sct", id="z"),
    ])
    assert result.for_series("bcg").status is COMPLETE
    assert result.for_series("hepb-birth").status is COMPLETE
    assert result.for_series("dtp").valid_doses == 1
    assert [w.dose_id for w in result.warnings if w.code == "unknown-vaccine"] == ["x", "y", "z"]


def test_vaccine_codings_publish_local_and_cvx_codes():
    assert codes.PE_VACCINE_SYSTEM == "https://puente.example.org/fhir/CodeSystem/pe-vacunas"
    schedule = load_schedule()
    assert schedule.vaccines["PENTA"].codings == (
        codes.Coding(codes.PE_VACCINE_SYSTEM, "PENTA", "Pentavalente (DPT-HvB-Hib)"),
        codes.Coding("http://hl7.org/fhir/sid/cvx", "102"),
    )
    confirmed = {code: v.cvx for code, v in schedule.vaccines.items() if not v.cvx_provisional}
    assert confirmed == {"BCG": "19", "HVB": "08", "PENTA": "102", "HVA": "83"}  # domain.md §4 [P]


def test_forecast_status_and_date_criterion_codes():
    dtp = forecast(at(2)).for_series("dtp")
    assert [(c.system, c.code) for c in dtp.forecast_status] == [
        ("http://terminology.hl7.org/CodeSystem/immunization-recommendation-status", "due"),
        ("http://hl7.org/fhir/us/immds/CodeSystem/ForecastStatus", "notComplete"),
    ]
    assert [(c.code, d) for c, d in dtp.date_criteria] == [
        ("30981-5", D(2024, 2, 26)), ("30980-7", at(2)), ("59778-1", at(3)), ("59777-3", at(60) - dt.timedelta(1)),
    ]
    assert [c.code for c in ForecastStatus.NOT_YET_DUE.codings] == ["notComplete"]
    assert [c.code for c in ForecastStatus.AGED_OUT.codings] == ["agedOut"]
    assert [c.code for c in ForecastStatus.COMPLETE.codings] == ["complete", "complete"]


# domain.md §5 recommended ages (months) per series dose [P]
RECOMMENDED_MONTHS = {
    "bcg": [0], "hepb-birth": [0], "dtp": [2, 4, 6, 18, 48], "polio": [2, 4, 6, 18, 48], "rotavirus": [2, 4],
    "pneumococcal": [2, 4, 12], "influenza-infant": [6, 7], "mmr": [12, 18], "varicella": [12],
    "yellow-fever": [15], "hepa": [15],
}


def test_schedule_recommended_ages_match_the_national_schedule():
    schedule = load_schedule("PE-NTS-196-2022")
    child = {s.id: s for s in schedule.series if s.population == "child"}
    assert set(child) == set(RECOMMENDED_MONTHS)
    for series_id, months in RECOMMENDED_MONTHS.items():
        got = [dose.recommended_age.after(B) for dose in child[series_id].doses]
        assert got == [at(m) for m in months], series_id
        for dose in child[series_id].doses:
            assert dose.minimum_age.after(B) <= dose.recommended_age.after(B), (series_id, dose.number)


def test_unknown_schedule():
    with pytest.raises(KeyError, match="PE-NTS-196-2022"):
        load_schedule("PE-NTS-000")


def test_assessment_before_birth_is_refused():
    with pytest.raises(ValueError):
        forecast(B - dt.timedelta(days=1))


# ----------------------------------------------------------------------------- pregnancy

EDD = D(2025, 6, 1)  # pregnancy start (LMP) 2024-08-25; 20 weeks 2025-01-12; 27 weeks 2025-03-02


def pregnancy(assessment: dt.date, *pairs: tuple[str, dt.date]):
    return forecast_pregnancy_immunizations(assessment_date=assessment, estimated_delivery_date=EDD,
                                            doses=doses(*pairs))


def test_pregnancy_series_windows():
    assert gestational_age_days(D(2025, 3, 2), estimated_delivery_date=EDD) == 27 * 7
    early = pregnancy(D(2025, 2, 20))
    assert {r.series_id for r in early.recommendations} == {"dtpa-pregnancy", "influenza-pregnancy",
                                                            "hepb-pregnancy"}
    dtpa = early.for_series("dtpa-pregnancy")
    assert dtpa.status is NOT_YET and dtpa.earliest == D(2025, 3, 2) and dtpa.latest == D(2025, 5, 10)
    assert early.for_series("influenza-pregnancy").status is OVERDUE
    assert pregnancy(D(2025, 3, 10)).for_series("dtpa-pregnancy").status is DUE
    assert pregnancy(D(2025, 5, 20)).for_series("dtpa-pregnancy").status is AGED_OUT


def test_dtpa_counts_once_per_pregnancy():
    previous = pregnancy(D(2025, 3, 10), ("DTPA", D(2023, 5, 1)))
    evaluation = next(e for e in previous.evaluations if e.series_id == "dtpa-pregnancy")
    assert evaluation.status is DoseStatus.NOT_COUNTED
    assert previous.for_series("dtpa-pregnancy").status is DUE
    assert pregnancy(D(2025, 3, 10), ("DTPA", D(2025, 3, 5))).for_series("dtpa-pregnancy").status is COMPLETE
    too_early = pregnancy(D(2025, 3, 10), ("DTPA", D(2025, 2, 16)))
    assert next(e for e in too_early.evaluations if e.series_id == "dtpa-pregnancy").reasons == (
        "before-minimum-age",)


def test_hepatitis_b_doses_before_pregnancy_count():
    complete = pregnancy(D(2025, 2, 1), ("HVB-ADULTO", D(2020, 1, 1)), ("HVB-ADULTO", D(2020, 2, 1)),
                         ("HVB-ADULTO", D(2020, 7, 1)))
    assert complete.for_series("hepb-pregnancy").status is COMPLETE
    partial = pregnancy(D(2025, 2, 1), ("HVB-ADULTO", D(2020, 1, 1))).for_series("hepb-pregnancy")
    assert partial.dose_number == 2 and partial.earliest == D(2025, 1, 12)


def test_pregnancy_reference_date_is_required_once():
    with pytest.raises(ValueError):
        forecast_pregnancy_immunizations(assessment_date=D(2025, 1, 1), doses=[])
    with pytest.raises(ValueError):
        forecast_pregnancy_immunizations(assessment_date=D(2025, 1, 1), doses=[], estimated_delivery_date=EDD,
                                         pregnancy_start=D(2024, 8, 25))
    by_start = forecast_pregnancy_immunizations(assessment_date=D(2025, 3, 10), doses=[],
                                                pregnancy_start=D(2024, 8, 25))
    assert by_start.reference_date == D(2024, 8, 25)
    assert by_start.for_series("dtpa-pregnancy").status is DUE
