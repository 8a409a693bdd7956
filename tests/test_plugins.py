"""The plugin system: entry-point discovery, disabling, clashes, the hook docs, core/plugin separation."""

from __future__ import annotations

import ast
import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import REPO
from fakes import FakePlugin, ToneProvider
from sesame_voice import hookspecs
from sesame_voice.cli import main
from sesame_voice.plugins import PluginClash, collect_frontends, collect_providers, make_plugin_manager

EXAMPLE = REPO / "examples" / "sesame-voice-example"


@pytest.fixture(scope="module")
def example_site(tmp_path_factory) -> Path:
    """The example plugin, pip-installed as its own distribution into a private folder."""
    target = tmp_path_factory.mktemp("example-site")
    source = tmp_path_factory.mktemp("example-src") / EXAMPLE.name
    shutil.copytree(EXAMPLE, source)  # building writes build/ beside the sources: keep the tree clean
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(source)],
        check=True,
    )
    return target


def test_builtins_load_from_entry_points_like_third_party_plugins():
    pm = make_plugin_manager()
    assert {"piper", "openai"} <= {name for name, _ in pm.list_name_plugin()}
    assert pm.distributions["piper"][0] == "sesame-voice"
    assert collect_providers(pm)["piper"].plugin == "piper"


async def test_separately_packaged_plugin_is_discovered_and_serves(example_site, monkeypatch, start_server):
    monkeypatch.syspath_prepend(str(example_site))
    pm = make_plugin_manager()
    assert pm.distributions["example"] == ("sesame-voice-example", "0.1.0")
    assert collect_providers(pm)["beep"].plugin == "example"
    assert collect_frontends(pm)["lines"].plugin == "example"
    async with start_server() as server:
        frontend = next(f for f in server.frontends if f.name == "lines")
        reader, writer = await asyncio.open_connection("127.0.0.1", frontend.port)
        writer.write(b"beeper one two three\n")
        await writer.drain()
        answer = (await reader.readline()).decode().split()
        writer.close()
        assert answer == ["OK", "beep", str(3 * 1600), "16000"]
        # The example's voice is served by the OpenAI frontend too: frontends and providers are independent.
        from openai import AsyncOpenAI

        client = AsyncOpenAI(base_url=f"http://127.0.0.1:{server.http_port}/v1", api_key="x", max_retries=0)
        response = await client.audio.speech.with_raw_response.create(
            model="tts-1", voice="beeper", input="one two", response_format="pcm"
        )
        assert response.headers["x-sesame-provider"] == "beep"
        assert len(response.content) == 2 * 2 * 2400  # two words × 100 ms at 24 kHz, 16-bit


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
    with pytest.raises(PluginClash, match="'tone' registered by both first and second"):
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
    public = {"hookspecs", "audio", "text", "types", "provider", "frontend", "config", "context", "sessions"}
    for folder in ("plugins", "protocols"):
        for source in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(source.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sesame_voice."):
                    assert node.module.split(".")[1] in public, f"{source} imports core internals {node.module}"


def test_every_hook_is_documented():
    docs = (REPO / "docs" / "plugins.md").read_text()
    hooks = [name for name in dir(hookspecs) if getattr(getattr(hookspecs, name), "sesame_voice_spec", None)]
    assert len(hooks) >= 7
    for hook in hooks:
        assert f"`{hook}(" in docs, f"docs/plugins.md does not document {hook}"
