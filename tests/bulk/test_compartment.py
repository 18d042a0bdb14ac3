"""The compartment table is the HL7 one. (That migration 0009 builds exactly bulk.tables is checked
with every package's tables in tests/storage/test_migrations.py.)"""

from __future__ import annotations

from bulk.compartment import compartment_params


def test_the_patient_compartment_is_r4s():
    params = compartment_params()
    assert len(params) == 66 + 1  # R4 4.0.1: 66 types besides Patient itself
    assert params["Observation"] == ("performer", "subject")
    assert params["Patient"] == ("link",)
    assert "Organization" not in params and "Practitioner" not in params
