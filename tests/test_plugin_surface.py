"""Built-in plugins and the example plugin use only the documented ``Server`` surface (docs/plugins.md)."""

from __future__ import annotations

import ast

from sesame_voice.api.surface import SURFACE
from support import REPO

PLUGIN_FOLDERS = [REPO / "plugins", REPO / "protocols", *sorted((REPO / "examples").glob("*/sesame_voice_*"))]
SECOND_LEVEL = {
    "voices": {"list", "get", "errors", "folder", "rescan"},
    "engine": {"synthesis", "validate", "serving_provider", "resolve_voice", "sampling_params"},
    "speech_to_text": {"transcribe", "start", "available", "providers", "provider", "model_names", "languages"},
}
"""What plugins may use of the surface's objects; other attributes are internal."""


def _server_uses(tree: ast.AST) -> list[tuple[int, str, str | None]]:
    """(line, attribute, attribute of that attribute) for each ``server.X`` / ``self.server.X``."""
    uses = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        base = node.value
        is_server = (isinstance(base, ast.Name) and base.id == "server") or (
            isinstance(base, ast.Attribute)
            and base.attr == "server"
            and isinstance(base.value, ast.Name)
            and base.value.id == "self"
        )
        if is_server:
            uses.append((node.lineno, node.attr, None))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
            inner = node.value
            if inner.attr in SECOND_LEVEL and (
                (isinstance(inner.value, ast.Name) and inner.value.id == "server")
                or (isinstance(inner.value, ast.Attribute) and inner.value.attr == "server")
            ):
                uses.append((node.lineno, inner.attr, node.attr))
    return uses


def test_the_surface_checker_catches_an_internal():
    tree = ast.parse("def f(server):\n    server.pm.hook\n    server.engine.workers\n")
    bad = [(a, b) for _, a, b in _server_uses(tree) if a not in SURFACE or (b and b not in SECOND_LEVEL.get(a, {b}))]
    assert bad == [("pm", None), ("engine", "workers")]


def test_plugins_reach_only_the_documented_server_surface():
    docs = (REPO / "docs" / "plugins.md").read_text(encoding="utf-8")
    for name in SURFACE:
        assert f"`{name}" in docs, f"docs/plugins.md does not document server.{name}"
    offences = []
    for folder in PLUGIN_FOLDERS:
        for source in folder.rglob("*.py"):
            if "testing" in source.name:
                continue  # testing helpers may inspect internals of the server they started
            for line, attr, sub in _server_uses(ast.parse(source.read_text(encoding="utf-8"))):
                if attr not in SURFACE or (sub and sub not in SECOND_LEVEL[attr]):
                    offences.append(f"{source.relative_to(REPO)}:{line} server.{attr}{'.' + sub if sub else ''}")
    assert offences == []
