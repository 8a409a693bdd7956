"""The tree passes ruff (lint and format) and import-linter with the configuration in pyproject.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import REPO


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240)


def _tool(name: str) -> str:
    """The console script next to this interpreter (the test extra installs it), else on PATH."""
    script = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert script, f"{name} is not installed: pip install -e '.[test]'"
    return script


def test_ruff_check_passes():
    result = _run(_tool("ruff"), "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_leaves_the_tree_as_it_is():
    result = _run(_tool("ruff"), "format", "--check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr


def test_import_contracts_hold():
    if "[tool.importlinter" not in (REPO / "pyproject.toml").read_text(encoding="utf-8"):
        pytest.skip("no [tool.importlinter] contracts in pyproject.toml yet")
    result = _run(_tool("lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
