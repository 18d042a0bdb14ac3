"""A small CHW cohort with hand-computed worklists and indicators (November 2026).

Places: district `dist` (92 m) with sectors `s1` and `s2` (partOf dist). CHWs `chw-a` (in CareTeam
`team-a` with the supervisor `sup-a`) and `chw-b`; every patient is managed by Organization `fac`.

- nino-anemia (F, born 2025-05-10; s1, chw-a): on 2026-10-15 weight 8.0 kg, length 72.0 cm (lhfa
  -2.75, wfa -1.92), Hb 9.0 g/dL (moderate at 17 months); no vaccine; referral sr-anemia of 10-16
  completed on 10-20.
  November: anaemia-follow-up, vaccine-overdue.
- nino-tamizaje (M, 2024-01-20; s1, chw-a): on 2026-03-01 weight 12.0, Hb 12.0 (none): 274 days
  unscreened on 11-30; no vaccine. November: screening-due, vaccine-overdue.
- recien-nacido (F, 2026-11-20; s1, chw-a): BCG and HepB on 11-20, weight 3.2 on 11-23, one home
  visit on 11-23 of the two due by 11-30 (days 3 and 7). November: newborn-visits (1 of 2).
- gestante (F, 1998; s1, chw-a): pregnant since 2026-07-01, last visit 2026-10-20.
  November: pregnancy-visit.
- gestante-visitada (F, 1996; s2, chw-b): pregnant since 2026-06-01, visited 2026-11-10. November: none.
- nino-referido (M, 2023-06-01; s2, chw-b): on 2026-09-01 weight 11.5, height 85.0 (lhfa -3.39, wfa
  -2.11), Hb 12.5 (none); no vaccine; referral sr-open of 10-05 (Task requested), sr-done of 11-02
  completed 11-12. November: vaccine-overdue, referral-open.

Every child without vaccines is overdue (BCG is overdue after day 1); the newborn had BCG and HepB at
birth and her next doses are at two months. The newborn is not "screening-due": the six-month rule
starts at six months of age.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.clinical_api.resources import HB, HEIGHT, LENGTH, RESIDENCE, WEIGHT, hb, immunization, location, observation

MONTH = "2026-11"
PREGNANT = {"coding": [{"system": "http://snomed.info/sct", "code": "77386006"}], "text": "Gestante"}
ACTIVE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]}
HOME = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"}

EXPECTED_S1 = {
    "nino-anemia": ["anaemia-follow-up", "vaccine-overdue"],
    "nino-tamizaje": ["screening-due", "vaccine-overdue"],
    "recien-nacido": ["newborn-visits"],
    "gestante": ["pregnancy-visit"],
}
EXPECTED_S2 = {"nino-referido": ["vaccine-overdue", "referral-open"]}
EXPECTED_DISTRICT = {**EXPECTED_S1, **EXPECTED_S2}
__all__ = ["HB"]


def _patient(pid: str, birth: str, gender: str, sector: str, chw: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "gender": gender,
        "birthDate": birth,
        "extension": [{"url": RESIDENCE, "valueReference": {"reference": f"Location/{sector}"}}],
        "generalPractitioner": [{"reference": f"Practitioner/{chw}"}],
        "managingOrganization": {"reference": "Organization/fac"},
    }


def _encounter(eid: str, pid: str, day: str) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished",
        "class": HOME,
        "subject": {"reference": f"Patient/{pid}"},
        "period": {"start": day, "end": day},
    }


def _pregnancy(cid: str, pid: str, onset: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": cid,
        "clinicalStatus": ACTIVE,
        "code": PREGNANT,
        "subject": {"reference": f"Patient/{pid}"},
        "onsetDateTime": onset,
    }


def _referral(sid: str, pid: str, authored: str, task_status: str, ended: str | None = None) -> list[dict[str, Any]]:
    request = {
        "resourceType": "ServiceRequest",
        "id": sid,
        "status": "completed" if ended else "active",
        "intent": "order",
        "code": {"text": "Talla baja severa: evaluación"},
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": authored,
        "performer": [{"reference": "Organization/fac"}],
    }
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": f"task-{sid}",
        "status": task_status,
        "intent": "order",
        "businessStatus": {"text": "Enviada al establecimiento"},
        "focus": {"reference": f"ServiceRequest/{sid}"},
        "for": {"reference": f"Patient/{pid}"},
        "authoredOn": authored,
    }
    if ended:
        task["executionPeriod"] = {"start": authored, "end": ended}
    return [request, task]


def resources() -> list[dict[str, Any]]:
    """In dependency order: places and staff, patients, then their records."""
    out: list[dict[str, Any]] = [
        {"resourceType": "Organization", "id": "fac", "name": "C.S. La Esperanza"},
        location("dist", 92),
        location("s1", 96, partOf={"reference": "Location/dist"}, description="Sector 1"),
        location("s2", 104, partOf={"reference": "Location/dist"}, description="Sector 2"),
        {"resourceType": "Practitioner", "id": "chw-a"},
        {"resourceType": "Practitioner", "id": "chw-b"},
        {"resourceType": "Practitioner", "id": "sup-a"},
        {
            "resourceType": "CareTeam",
            "id": "team-a",
            "status": "active",
            "name": "Equipo ACS Sector 1",
            "participant": [
                {"member": {"reference": "Practitioner/sup-a"}},
                {"member": {"reference": "Practitioner/chw-a"}},
            ],
        },
        _patient("nino-anemia", "2025-05-10", "female", "s1", "chw-a"),
        _patient("nino-tamizaje", "2024-01-20", "male", "s1", "chw-a"),
        _patient("recien-nacido", "2026-11-20", "female", "s1", "chw-a"),
        _patient("gestante", "1998-03-01", "female", "s1", "chw-a"),
        _patient("gestante-visitada", "1996-05-01", "female", "s2", "chw-b"),
        _patient("nino-referido", "2023-06-01", "male", "s2", "chw-b"),
        # nino-anemia, 2026-10-15
        observation("w-anemia", "nino-anemia", WEIGHT, Decimal("8.0"), "kg", "2026-10-15"),
        observation("l-anemia", "nino-anemia", LENGTH, Decimal("72.0"), "cm", "2026-10-15"),
        hb("hb-anemia", "nino-anemia", Decimal("9.0"), "2026-10-15"),
        *_referral("sr-anemia", "nino-anemia", "2026-10-16", "completed", "2026-10-20"),
        # nino-tamizaje, 2026-03-01
        observation("w-tamizaje", "nino-tamizaje", WEIGHT, Decimal("12.0"), "kg", "2026-03-01"),
        hb("hb-tamizaje", "nino-tamizaje", Decimal("12.0"), "2026-03-01"),
        # recien-nacido
        immunization("bcg-rn", "recien-nacido", "BCG", "2026-11-20"),
        immunization("hvb-rn", "recien-nacido", "HVB", "2026-11-20"),
        observation("w-rn", "recien-nacido", WEIGHT, Decimal("3.2"), "kg", "2026-11-23"),
        _encounter("visita-rn-1", "recien-nacido", "2026-11-23"),
        # pregnancies
        _pregnancy("embarazo-1", "gestante", "2026-07-01"),
        _encounter("visita-g-1", "gestante", "2026-10-20"),
        _pregnancy("embarazo-2", "gestante-visitada", "2026-06-01"),
        _encounter("visita-g-2", "gestante-visitada", "2026-11-10"),
        # nino-referido, 2026-09-01
        observation("w-referido", "nino-referido", WEIGHT, Decimal("11.5"), "kg", "2026-09-01"),
        observation("h-referido", "nino-referido", HEIGHT, Decimal("85.0"), "cm", "2026-09-01"),
        hb("hb-referido", "nino-referido", Decimal("12.5"), "2026-09-01"),
        *_referral("sr-open", "nino-referido", "2026-10-05", "requested"),
        *_referral("sr-done", "nino-referido", "2026-11-02", "completed", "2026-11-12"),
    ]
    return out


def transaction() -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources()
        ],
    }
