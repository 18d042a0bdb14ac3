"""The committed registry: every R4 type, restricted expressions, resolved composites, and no drift."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from fhir_mappings.search.registry import FastPath, registry
from tests.fixtures.reference_data import FHIR_R4

from .helpers import ROOT

REGISTRY_FILE = ROOT / "fhir_mappings" / "data" / "search_parameters.json"
COMMON = ("_id", "_lastUpdated", "_tag", "_profile", "_security", "_source")


def test_every_r4_resource_type_with_the_common_parameters() -> None:
    reg = registry()
    assert len(reg.resource_types) == 147
    assert {"Patient", "Observation", "ServiceRequest", "Task", "Immunization", "Bundle"} <= reg.resource_types
    for resource_type in reg.resource_types:
        params = reg.params_for(resource_type)
        for code in COMMON:
            assert params[code].common
    last_updated = reg.get("Task", "_lastUpdated")
    assert last_updated is not None
    assert last_updated.expression == "Task.meta.lastUpdated"
    assert last_updated.type == "date"


def test_shared_expressions_keep_only_the_terms_of_the_type() -> None:
    reg = registry()
    allergy = reg.get("AllergyIntolerance", "patient")
    observation = reg.get("Observation", "patient")
    assert allergy is not None and observation is not None
    assert allergy.expression == "AllergyIntolerance.patient"
    assert allergy.target_filter == ()
    # `.where(resolve() is Patient)` becomes data: fhirpathpy cannot evaluate resolve()
    assert observation.expression == "Observation.subject"
    assert observation.target_filter == ("Patient",)
    assert observation.targets == ("Patient",)
    assert "clinical-patient" in observation.url
    assert observation.description == "The subject that the observation is about (if patient)"


def test_choice_types_and_as_become_typed_fast_paths() -> None:
    reg = registry()
    value_quantity = reg.get("Observation", "value-quantity")
    date = reg.get("Observation", "date")
    assert value_quantity is not None and date is not None
    assert value_quantity.expression == "Observation.value.ofType(Quantity) | Observation.value.ofType(SampledData)"
    assert value_quantity.paths == (
        FastPath(("valueQuantity",), "Quantity"),
        FastPath(("valueSampledData",), "SampledData"),
    )
    assert {p.steps[0] for p in date.paths or ()} == {
        "effectiveDateTime",
        "effectivePeriod",
        "effectiveTiming",
        "effectiveInstant",
    }
    phone = reg.get("Patient", "phone")
    assert phone is not None and phone.paths == (FastPath(("telecom", ("system", "phone")), "ContactPoint"),)
    composition = reg.get("Bundle", "composition")
    assert composition is not None and composition.paths == (FastPath(("entry", 0, "resource"), "Resource"),)


def test_errata_are_repaired() -> None:
    reg = registry()
    insurance_name = reg.get("InsurancePlan", "name")  # R4 writes "name | alias" without the type
    assert insurance_name is not None and insurance_name.expression == "InsurancePlan.name | InsurancePlan.alias"
    code_value_date = reg.get("Observation", "code-value-date")  # R4 writes value.as(DateTime)
    assert code_value_date is not None
    assert code_value_date.components[1].expression == "value.ofType(dateTime) | value.ofType(Period)"


def test_composites_have_resolved_components() -> None:
    param = registry().get("Observation", "combo-code-value-quantity")
    assert param is not None
    assert [(c.code, c.type) for c in param.components] == [
        ("combo-code", "token"),
        ("combo-value-quantity", "quantity"),
    ]
    assert [c.base for c in param.contexts] == ["Observation", "Observation.component"]
    assert param.paths is not None
    assert [p.steps for p in param.paths] == [(), ("component",)]
    for path in param.paths:
        assert path.components == (
            (FastPath(("code",), "CodeableConcept"),),
            (FastPath(("valueQuantity",), "Quantity"),),
        )


def test_modifiers_comparators_targets_and_bound_code_systems() -> None:
    reg = registry()
    identifier, gender, name, subject, url, birthdate = (
        reg.get("Patient", "identifier"),
        reg.get("Patient", "gender"),
        reg.get("Patient", "name"),
        reg.get("Observation", "subject"),
        reg.get("ValueSet", "url"),
        reg.get("Patient", "birthdate"),
    )
    assert identifier and gender and name and subject and url and birthdate
    assert identifier.modifiers == {"missing", "not", "text", "of-type"}
    assert gender.modifiers == {"missing", "not"}
    assert gender.code_system == "http://hl7.org/fhir/administrative-gender"
    assert name.modifiers == {"missing", "exact", "contains"}
    assert subject.modifiers == {"missing", "identifier"}
    assert subject.targets == ("Device", "Group", "Location", "Patient")
    assert url.modifiers == {"missing", "above", "below"}
    assert birthdate.comparators == {"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"}


def test_only_fhirpath_expressions_without_fast_path_are_the_expected_ones() -> None:
    slow = sorted(f"{p.resource_type}.{p.code}" for p in registry() if p.paths is None)
    assert slow == ["Patient.deceased"]


def test_source_is_noted_and_nothing_indexed_is_unsupported_type() -> None:
    data = json.loads(REGISTRY_FILE.read_text(encoding="utf-8"))
    assert "search-parameters.json" in data["source"] and "generate_search_registry.py" in data["source"]
    assert data["fhir_version"] == "4.0.1"
    assert {p.type for p in registry()} == {
        "token",
        "string",
        "date",
        "reference",
        "quantity",
        "uri",
        "number",
        "composite",
    }


def test_generator_reproduces_the_committed_file(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location(
        "generate_search_registry", ROOT / "tools" / "generate_search_registry.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    generated = module.dump(module.Generator(FHIR_R4).run())
    assert generated == REGISTRY_FILE.read_text(encoding="utf-8"), "re-run tools/generate_search_registry.py"
