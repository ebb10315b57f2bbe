"""Layers a test proves (issue #17): the import contracts, ruff and mypy, run on this checkout.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``). import-linter finds the packages
on ``sys.path`` and reads their source without running it, so each run here is a subprocess whose
working directory and ``PYTHONPATH`` are the tree under test: this checkout, or a copy of it with a
wrong-way import added, which must break the contracts it crosses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("detector", "calibration", "dashboards")
LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def _files(folder: str, pattern: str, *, skip: tuple[str, ...]) -> list[str]:
    return [p.relative_to(ROOT).as_posix() for p in sorted((ROOT / folder).glob(pattern)) if p.name not in skip]


# ruff must find the whole tree clean
RUFF_ALL = ["detector", "calibration", "dashboards", "tests", "bench"]


def _run(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(cwd))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return _run(["-c", LINT_IMPORTS, "--no-cache", "--config", str(tree / "pyproject.toml")], cwd=tree)


def _contracts() -> list[dict]:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["tool"]["importlinter"]["contracts"]


def test_import_contracts_are_kept():
    r = _lint_imports(ROOT)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert f"Contracts: {len(_contracts())} kept, 0 broken." in out, out


def test_every_package_has_a_layer():
    """The layers contract names every package, so a new one cannot slip in unchecked."""
    (layers,) = [c for c in _contracts() if c["type"] == "layers"]
    declared = {name.strip() for layer in layers["layers"] for name in layer.replace(":", "|").split("|")}
    packages = {f"detector.{p.parent.name}" for p in (ROOT / "detector").glob("*/__init__.py")}
    assert declared == packages | {"calibration", "dashboards"}


def _copy_tree(dst: Path) -> Path:
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, dst / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", dst / "pyproject.toml")
    return dst


def _append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


def test_wrong_way_imports_break_the_contracts(tmp_path):
    tree = _copy_tree(tmp_path)
    # dsp (near the bottom) reaching up to the vehicle API
    _append(tree / "detector/dsp/_psd.py", "\n\nimport detector.api  # wrong way\n")
    # a pure package plotting, lazily inside a function: lazy imports count too
    _append(tree / "detector/detection/_thresholds.py", "\n\ndef _wrong_way():\n    import matplotlib.pyplot  # wrong way\n")
    r = _lint_imports(tree)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "Layers: each package imports only the packages below it BROKEN" in out, out
    assert "detector.dsp._psd -> detector.api" in out, out
    assert "Pure packages never import I/O, web, storage, CLI or plotting libraries BROKEN" in out, out
    assert "detector.detection._thresholds -> matplotlib" in out, out
    assert "matplotlib only in dashboards BROKEN" in out, out
    assert "uvicorn only in detector.cli KEPT" in out, out
    assert f"Contracts: {len(_contracts()) - 3} kept, 3 broken." in out, out


@pytest.mark.parametrize("paths", [RUFF_ALL], ids=["all"])
def test_ruff_is_clean(paths):
    r = _run(["-m", "ruff", "check", "--no-cache", "--output-format", "concise", *paths], cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_passes_on_the_pure_packages(tmp_path):
    # the files to check are `[tool.mypy] files` in pyproject.toml
    r = _run(["-m", "mypy", "--cache-dir", str(tmp_path / "mypy_cache")], cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Success: no issues found" in r.stdout, r.stdout + r.stderr
