"""Documents and messages send users to the ``hf`` command that huggingface-hub ships today, never to the
removed old command (whose name is spelled here in two pieces so this file does not match itself)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OLD_COMMAND = "huggingface" + "-cli"
SEARCHED = ("README.md", "docs", "sesame_voice", "plugins", "protocols", "examples", "deploy", "benchmarks")


def test_no_document_or_message_names_the_old_command():
    found = []
    for entry in SEARCHED:
        path = ROOT / entry
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            if "__pycache__" in file.parts or file.suffix in (".pyc", ".onnx", ".wav", ".safetensors"):
                continue
            try:
                text = file.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            found += [
                f"{file.relative_to(ROOT)}:{n}" for n, line in enumerate(text.splitlines(), 1) if OLD_COMMAND in line
            ]
    assert not found, f"current huggingface-hub has no {OLD_COMMAND}; name the hf command instead: {found}"


def test_the_csm_advice_names_the_hf_commands():
    from sesame_voice_csm.common.errors import access_advice, missing_advice

    assert "`hf download sesame/csm-1b`" in missing_advice("sesame/csm-1b")
    assert "`hf auth login`" in access_advice("sesame/csm-1b")
    assert "huggingface-hub 0.34 or later" in missing_advice("/some/folder")  # the note for older installs
