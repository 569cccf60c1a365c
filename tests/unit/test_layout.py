"""The libraries stay libraries: `ml/` and `data_quality/` import neither Dagster nor the code
location, so they run (and are tested) without an orchestrator, and data flows one way."""

import ast
from pathlib import Path

import pytest

from orchestration.settings import PROJECT_ROOT

FORBIDDEN = ("dagster", "dagster_dbt", "orchestration")
LIBRARIES = ("ml", "data_quality")


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("library", LIBRARIES)
def test_library_imports_no_orchestration(library):
    files = sorted((PROJECT_ROOT / library).rglob("*.py"))
    assert files
    offending = {
        f"{path.relative_to(PROJECT_ROOT)}: {module}"
        for path in files
        for module in imported_modules(path)
        if module.split(".")[0] in FORBIDDEN
    }
    assert not offending, sorted(offending)
