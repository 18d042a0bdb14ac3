"""Generated vaccines use the codes of Puente's immunization rule set, so the forecast sees them."""

from __future__ import annotations

import json
from pathlib import Path

from seed.schedule import CHILD_SCHEDULE, DTPA_PREGNANCY, INFLUENZA_PREGNANCY, SCHEDULE_NAME

RULESET = Path(__file__).resolve().parents[2] / "clinical" / "data" / "immunization" / f"{SCHEDULE_NAME}.json"


def test_every_generated_vaccine_is_in_the_rule_set_with_the_same_cvx() -> None:
    vaccines = {v["code"]: v["cvx"] for v in json.loads(RULESET.read_text())["vaccines"]}
    for dose in (*CHILD_SCHEDULE, DTPA_PREGNANCY[0], INFLUENZA_PREGNANCY[0]):
        assert dose.code in vaccines, dose.code
        assert dose.cvx == vaccines[dose.code], dose.code


def test_vaccine_system_is_puentes() -> None:
    from clinical.codes import PE_VACCINE_SYSTEM

    assert PE_VACCINE_SYSTEM == PE_VACCINE_SYSTEM
