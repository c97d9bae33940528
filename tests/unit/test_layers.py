"""The layer contract (``[tool.importlinter]`` in pyproject.toml) holds, and fails when crossed.

``make lint`` runs ``lint-imports`` on the tree as it is. Here the same contracts run on a copy
of the code with one forbidden import added, to prove the check can fail.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def copy_of_code(tmp_path: Path) -> Path:
    for package in ("services", "fhir_mappings"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return tmp_path


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    result = lint_imports(copy_of_code(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "contract"),
    [
        ("services/infusion_bridge/domain/orders.py", "from ..store import db", "The domain"),
        ("fhir_mappings/codes.py", "import httpx", "FHIR mappings import only the domain"),
        ("services/infusion_bridge/api/orders.py", "from ..store import orders", "Routers"),
        ("services/infusion_bridge/store/orders.py", "from ..usecases import orders", "Layers"),
    ],
)
def test_a_crossed_layer_fails(tmp_path: Path, module: str, bad_import: str, contract: str) -> None:
    tree = copy_of_code(tmp_path)
    path = tree / module
    path.write_text(path.read_text() + f"\n{bad_import}  # noqa\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(line.startswith(contract) for line in broken), result.stdout
