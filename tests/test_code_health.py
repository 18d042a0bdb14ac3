"""The code stays lint-clean and its packages depend on each other in one direction only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# architecture.md: an arrow means "may import".
ALLOWED = {
    "api": {"api", "auth", "storage", "exchange", "clinical", "programme", "fhir_mappings", "settings", "seed"},
    "programme": {"programme", "storage", "clinical", "fhir_mappings", "auth"},
    "storage": {"storage", "fhir_mappings", "auth"},
    "exchange": {"exchange", "storage", "fhir_mappings", "settings"},
    "clinical": {"clinical", "fhir_mappings"},
    "fhir_mappings": {"fhir_mappings"},
    "auth": {"auth", "settings"},
}
OURS = {
    "api", "auth", "storage", "exchange", "clinical", "programme", "fhir_mappings", "settings", "cli", "seed", "bench",
    "tools",
}


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_types_check():
    packages = sorted(p for p in OURS | {"migrations"} if (ROOT / p).is_dir())
    result = subprocess.run([sys.executable, "-m", "mypy", *packages], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_dependencies_point_one_way(package):
    wrong = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / package).rglob("*.py")
        for name in _imports(path)
        if name not in ALLOWED[package]
    }
    assert not wrong, sorted(wrong)
