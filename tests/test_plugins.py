"""The plugin system: entry-point discovery, disabling, clashes, the hook docs, core/plugin separation."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest

from fakes import FakePlugin, ToneProvider
from sesame_voice.api import hookspecs
from sesame_voice.app.cli import main
from sesame_voice.app.plugins import PluginClash, collect_providers, make_plugin_manager
from support import REPO

EXAMPLE = REPO / "examples" / "sesame-voice-example"


@pytest.fixture(scope="module")
def example_site(tmp_path_factory) -> Path:
    """The example plugin, pip-installed as its own distribution into a private folder."""
    target = tmp_path_factory.mktemp("example-site")
    source = tmp_path_factory.mktemp("example-src") / EXAMPLE.name
    shutil.copytree(EXAMPLE, source)  # building writes build/ beside the sources: keep the tree clean
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
    )
    return target


@pytest.mark.drives_hook("register_providers")
def test_builtins_load_from_entry_points_like_third_party_plugins():
    pm = make_plugin_manager()
    assert {"piper", "openai"} <= {name for name, _ in pm.list_name_plugin()}
    assert pm.distributions["piper"][0] == "sesame-voice"
    assert collect_providers(pm)["piper"].plugin == "piper"


@pytest.fixture(scope="module")
def example_wheel(tmp_path_factory) -> Path:
    """The example plugin built into a wheel, from a copy (building writes build/ beside the sources)."""
    source = tmp_path_factory.mktemp("example-src") / EXAMPLE.name
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    dist = tmp_path_factory.mktemp("example-dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(dist),
            str(source),
        ],
        check=True,
    )
    return next(dist.glob("sesame_voice_example-*.whl"))


def test_example_plugin_tests_pass_from_its_wheel_in_a_fresh_venv(example_wheel, tmp_path):
    """As an outside author would: a new venv, sesame-voice installed, the plugin from its wheel, pytest."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # sesame-voice and its (large) dependencies come from this environment instead of a second download.
    here = sysconfig.get_paths()["purelib"]
    (site / "sesame_voice_env.pth").write_text(f"import site; site.addsitedir({here!r})\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(example_wheel),
        ],
        check=True,
    )
    run = tmp_path / "run"  # only the tests and their pytest settings: the package comes from the wheel
    shutil.copytree(EXAMPLE / "tests", run / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(EXAMPLE / "pyproject.toml", run / "pyproject.toml")
    located = subprocess.run(
        [python, "-c", "import sesame_voice_example as m; print(m.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=run,
    ).stdout
    assert located.startswith(str(site))
    result = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=run,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed and int(passed.group(1)) >= 8 and "failed" not in result.stdout


def test_plugins_command_lists_the_example(example_site, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(example_site))
    assert main(["plugins", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["providers"]["beep"] == "example"
    assert any(row["name"] == "example" and row["distribution"] == "sesame-voice-example" for row in listing["plugins"])


def test_a_plugin_can_be_disabled_by_name(capsys):
    pm = make_plugin_manager(disabled=["piper"])
    assert "piper" not in collect_providers(pm)
    assert main(["plugins", "--json", "--disable", "piper"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert "piper" not in listing["providers"] and listing["disabled"] == ["piper"]


def test_duplicate_provider_names_are_refused():
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(FakePlugin(ToneProvider), name="first")
    pm.register(FakePlugin(ToneProvider), name="second")
    with pytest.raises(PluginClash, match="'tone' registered by both plugin first and plugin second"):
        collect_providers(pm)


def test_a_broken_plugin_is_reported_not_fatal(tmp_path, monkeypatch):
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[sesame_voice]\nbroken = module_that_does_not_exist\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    pm = make_plugin_manager()
    assert "broken" in pm.failed and "ModuleNotFoundError" in pm.failed["broken"]
    assert "piper" in collect_providers(pm)


def test_core_never_imports_plugins_or_protocols():
    plugin_modules = {p.name for folder in ("plugins", "protocols") for p in (REPO / folder).iterdir() if p.is_dir()}
    assert {"sesame_voice_piper", "sesame_voice_openai"} <= plugin_modules
    for source in (REPO / "sesame_voice").rglob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in plugin_modules, f"{source.name} imports {name}"


def test_plugins_use_only_the_public_api():
    public = (
        "sesame_voice.api",
        "sesame_voice.audio",
        "sesame_voice.config",
        "sesame_voice.http",
        "sesame_voice.voices.library",
        "sesame_voice.testing",
    )
    for folder in ("plugins", "protocols"):
        for source in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(source.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sesame_voice."):
                    assert node.module.startswith(public), f"{source} imports core internals {node.module}"


def test_every_hook_is_documented():
    docs = (REPO / "docs" / "plugins.md").read_text()
    hooks = [name for name in dir(hookspecs) if getattr(getattr(hookspecs, name), "sesame_voice_spec", None)]
    assert len(hooks) >= 7
    for hook in hooks:
        assert f"`{hook}(" in docs, f"docs/plugins.md does not document {hook}"


PLUGIN_NAMES = tuple(
    sorted(
        {ep.name for ep in metadata.entry_points(group="sesame_voice")}
        | {
            "csm",
            "piper",
            "whisper",
            "faster_whisper",
            "faster-whisper",
            "mlx",
            "torch",
            "transformers",
            "wyoming",
            "openai",
            "legacy",
            "sessions",
        }
    )
)
"""Every built-in plugin, and the libraries only plugins may name. ``responder`` is left out: the built-in
responder plugin shares its name with the provider kind the core defines (``Responder``)."""
PLUGIN_NAMES = tuple(name for name in PLUGIN_NAMES if name != "responder")
DOCUMENTED_DEFAULTS = {"sesame/csm-1b"}
"""Defaults documented as such (MODEL_ID's hub id)."""


def test_the_core_names_no_provider_or_protocol_plugin():
    """Outside comments and docstrings, no file of the core package holds a plugin's name."""
    for source in (REPO / "sesame_voice").rglob("*.py"):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        docstrings |= {
            id(node.value)
            for node in ast.walk(tree)  # attribute docstrings
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        }
        names = PLUGIN_NAMES
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = "" if id(node) in docstrings or node.value in DOCUMENTED_DEFAULTS else node.value
            elif isinstance(node, ast.Name):
                text = node.id
            elif isinstance(node, ast.Attribute):
                text = node.attr
            elif isinstance(node, ast.arg):
                text = node.arg
            else:
                continue
            found = [name for name in names if name in text.lower()]
            assert not found, f"{source.relative_to(REPO)}:{getattr(node, 'lineno', '?')} names {found}: {text[:60]!r}"
