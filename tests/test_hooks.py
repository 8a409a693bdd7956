"""Every hookspec is driven by a test through a real plugin.

A test declares ``@pytest.mark.drives_hook("name")``; the testing kit fails that test unless the
hook really was called with a plugin implementing it. This meta-test fails for any hookspec (present
or added later) that no test in tests/ or in the example plugin's suite declares.
"""

from __future__ import annotations

import ast
from pathlib import Path

from sesame_voice.api import hookspecs
from support import REPO

TEST_FOLDERS = [REPO / "tests", *sorted((REPO / "examples").glob("*/tests"))]


def hookspec_names() -> set[str]:
    return {name for name in dir(hookspecs) if getattr(getattr(hookspecs, name), "sesame_voice_spec", None)}


def declared_hooks(folders: list[Path]) -> dict[str, list[str]]:
    """Hook name → tests marked ``drives_hook`` with it."""
    found: dict[str, list[str]] = {}
    for folder in folders:
        for source in folder.rglob("test_*.py"):
            for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                for decorator in node.decorator_list:
                    if isinstance(decorator, ast.Call) and ast.unparse(decorator.func).endswith("mark.drives_hook"):
                        for arg in decorator.args:
                            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                                found.setdefault(arg.value, []).append(f"{source.name}::{node.name}")
    return found


def test_every_hookspec_is_driven_by_a_test():
    declared = declared_hooks(TEST_FOLDERS)
    undriven = sorted(hookspec_names() - set(declared))
    assert not undriven, f"hookspecs without a test marked @pytest.mark.drives_hook: {undriven}"
    unknown = sorted(set(declared) - hookspec_names())
    assert not unknown, f"tests claim to drive hooks that do not exist: {unknown}"


def test_the_meta_test_notices_a_hook_without_a_test(tmp_path):
    (tmp_path / "test_some.py").write_text(
        "import pytest\n\n@pytest.mark.drives_hook('register_providers')\ndef test_x():\n    pass\n"
    )
    declared = declared_hooks([tmp_path])
    assert set(declared) == {"register_providers"}
    assert "voices_changed" in hookspec_names() - set(declared)


def test_a_marked_test_that_never_calls_its_hook_fails(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.drives_hook("voices_changed")
        async def test_starts_a_server_but_changes_no_voice(start_server):
            async with start_server(entry_points=False):
                pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "asyncio", "-o", "asyncio_mode=auto")
    result.assert_outcomes(passed=1, errors=1)
    assert "marked drives_hook but never called ['voices_changed']" in result.stdout.str()
