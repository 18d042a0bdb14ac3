"""The rules write derived facts with the server's authority, in the caller's transaction.

A CHW app allowed only to write Observations still gets the Flag and the draft referral; and when
the write fails, nothing derived from it remains. Repository level (the HTTP tests run with auth off).
"""

from __future__ import annotations

import pytest

import rules
from auth.principal import LOCAL_EXPLORER, Principal
from fhir_mappings import fhir_json
from fhir_mappings.outcomes import Forbidden
from rules import ClinicalConfig
from storage.database import create_engine, transaction
from storage.repository import FhirRepository
from tests.clinical_api.resources import hb, patient
from tests.fixtures.databases import empty_all_tables

CHW = Principal(subject="chw-07", scopes=frozenset({"user/Observation.cru", "user/Patient.r"}), role="chw",
                practitioner="Practitioner/chw-07")


class _Boom(RuntimeError):
    pass


async def test_a_chw_without_flag_scopes_still_gets_the_derived_facts(database_url):
    await empty_all_tables(database_url)
    subscribers = rules.subscribers(ClinicalConfig())
    engine = create_engine(database_url)
    try:
        async with transaction(engine, write=True) as connection:
            admin = FhirRepository(connection, LOCAL_EXPLORER, subscribers=subscribers)
            await admin.update("Patient", "kid", patient(
                "kid", generalPractitioner=[{"reference": "Practitioner/chw-07"}]))  # her patient
        async with transaction(engine, write=True) as connection:
            chw = FhirRepository(connection, CHW, subscribers=subscribers)
            stored = await chw.create(hb("x", "kid", 6.5), resource_id="hb1")
            assert "LL" in stored.version.content
            with pytest.raises(Forbidden):
                await chw.read("Flag", "kid-severe-anaemia")
        # Rolled back: the derived facts of a failed write never remain.
        with pytest.raises(_Boom):
            async with transaction(engine, write=True) as connection:
                chw = FhirRepository(connection, CHW, subscribers=subscribers)
                await chw.create(hb("y", "kid", 6.0), resource_id="hb2")
                raise _Boom
        async with transaction(engine, write=False) as connection:
            admin = FhirRepository(connection, LOCAL_EXPLORER)
            flag = fhir_json.loads((await admin.read("Flag", "kid-severe-anaemia")).content)
            assert [e["valueReference"]["reference"] for e in flag["extension"]] == ["Observation/hb1"]
            referral = fhir_json.loads((await admin.read("ServiceRequest", "kid-referral-severe-anaemia")).content)
            assert referral["status"] == "draft"
            assert not await admin.exists("Observation", "hb2")
    finally:
        await engine.dispose()
