"""The table of access-conferring references (storage.grants.RULES) is the README's, row for row."""

from __future__ import annotations

from pathlib import Path

from storage.grants import RULES

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_table_lists_every_rule():
    readme = README.read_text()
    for rule in RULES:
        assert rule.grants in readme, rule


def test_every_rule_has_a_test_with_real_tokens():
    """tests/auth/test_write_grants.py exercises each (type, target) row below; a new rule needs its test."""
    covered = {
        ("*", "Patient"), ("Task", "Organization"), ("ServiceRequest", "Organization"), ("Task", "ServiceRequest"),
        ("Task", "*"), ("ServiceRequest", "*"), ("*", "ServiceRequest"), ("Patient", "Practitioner"),
        ("CareTeam", "Practitioner"), ("PractitionerRole", "*"),
    }
    assert {(rule.resource_type, rule.target_type) for rule in RULES} == covered
