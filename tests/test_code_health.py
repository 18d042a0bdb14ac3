"""The code stays lint-clean and its packages depend on each other in one direction only."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# An arrow means "may import" (README, Architecture). Every top-level package of ours has a row, and
# every name in a row is a package that exists: a new package, or a removed one, fails until the
# table is brought up to date.
ALLOWED = {
    "settings": set(),
    "fhir_mappings": set(),
    "clinical": {"fhir_mappings"},
    "auth": {"fhir_mappings", "settings"},
    "storage": {"fhir_mappings", "auth"},
    "rules": {"clinical", "fhir_mappings", "storage", "auth", "settings"},
    "exchange": {"storage", "fhir_mappings", "auth", "settings", "clinical"},
    "wiring": {"rules", "exchange", "storage", "settings"},
    "bulk": {"storage", "fhir_mappings", "auth", "settings"},
    "programme": {"storage", "clinical", "fhir_mappings", "auth"},
    "api": {"wiring", "exchange", "rules", "bulk", "programme", "storage", "auth", "clinical", "fhir_mappings",
            "settings"},
    "seed": {"clinical", "fhir_mappings"},
    "migrations": {"storage", "auth"},
    "cli": {"api", "wiring", "exchange", "bulk", "seed", "storage", "auth", "fhir_mappings", "settings"},
    "bench": {"api", "cli", "exchange", "bulk", "programme", "seed", "storage", "auth", "fhir_mappings", "settings"},
    "tools": {"api", "clinical", "fhir_mappings", "settings"},
    "examples": set(),  # stand-alone client examples: they use the API, never our code
}
NOT_PACKAGES = {"tests", "openapi"}  # the suite itself; the published document


def _top_level_packages() -> set[str]:
    return {
        path.name
        for path in ROOT.iterdir()
        if path.is_dir() and not path.name.startswith(".") and path.name not in NOT_PACKAGES
        and any(path.glob("*.py"))
    }


OURS = _top_level_packages()


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_types_check():
    packages = sorted(OURS - {"examples"})
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


def test_every_package_has_its_row_and_every_row_names_real_packages():
    assert set(ALLOWED) == OURS
    assert not set().union(*ALLOWED.values()) - OURS


def test_the_allowed_imports_have_no_cycle():
    done: set[str] = set()

    def visit(package: str, path: tuple[str, ...]) -> None:
        assert package not in path, " -> ".join((*path, package))
        if package not in done:
            for target in ALLOWED[package]:
                visit(target, (*path, package))
            done.add(package)

    for package in ALLOWED:
        visit(package, ())


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_dependencies_point_one_way(package):
    wrong = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / package).rglob("*.py")
        if "node_modules" not in path.parts
        for name in _imports(path)
        if name != package and name not in ALLOWED[package]
    }
    assert not wrong, sorted(wrong)


def test_the_installed_distribution_carries_every_runtime_package():
    """The container installs Puente as a wheel: a package missing from the list is missing there."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
                 ["packages"])
    assert listed == OURS - {"bench", "tools", "examples"}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", (ROOT / "Dockerfile").read_text(), flags=re.M))
    assert copied == listed
