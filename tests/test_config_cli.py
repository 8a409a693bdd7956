"""Configuration layering and fail-fast errors; the CLI's commands."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sesame_voice.api.text import SentenceStream, split_sentences
from sesame_voice.app.cli import main
from sesame_voice.audio import decode_audio
from sesame_voice.config import ConfigError, load_settings


def test_defaults_match_the_documented_ones():
    settings = load_settings(env={}, dotenv_file=None)
    assert (settings.host, settings.port) == ("127.0.0.1", 8880) and not hasattr(settings, "model_id")
    assert settings.cache_dir == Path("~/.cache/sesame-voice").expanduser()
    assert (settings.default_voice, settings.default_format, settings.max_input_length) == (
        "conversational",
        "mp3",
        4096,
    )
    assert settings.api_key is None


def test_env_beats_dotenv_beats_yaml(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        "port: 9000\ndefault_voice: fast\nmax_input_length: 100\nplugins:\n  csm:\n    first_chunk_frames: 4\n"
    )
    dotenv = tmp_path / ".env"
    dotenv.write_text("PORT=9100\nDEFAULT_VOICE=whisper\nAPI_KEY=from-dotenv\n")
    settings = load_settings(config_file=config, env={"PORT": "9200"}, dotenv_file=dotenv)
    assert settings.port == 9200
    assert settings.default_voice == "whisper"
    assert settings.max_input_length == 100
    assert settings.api_key == "from-dotenv"
    assert settings.plugin_config("csm") == {"first_chunk_frames": 4}


@pytest.mark.parametrize(
    "env, named",
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"DEFAULT_FORMAT": "ogg"}, "DEFAULT_FORMAT"),
        ({"MAX_INPUT_LENGTH": "0"}, "MAX_INPUT_LENGTH"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL"),
        ({"ZEROCONF_ENABLED": "maybe"}, "ZEROCONF_ENABLED"),
        ({"ZEROCONF_INTERFACES": "eth0"}, "ZEROCONF_INTERFACES"),
    ],
)
def test_bad_values_fail_fast_naming_the_setting(env, named):
    with pytest.raises(ConfigError, match=named):
        load_settings(env=env, dotenv_file=None)


def test_a_plugins_bad_setting_stops_serve_at_start_naming_it(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WYOMING_URI", "10200")
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ZEROCONF_ENABLED", "false")
    monkeypatch.setenv("PORT", "0")
    monkeypatch.setenv("HOST", "127.0.0.1")
    assert main(["serve", "--disable", "csm"]) == 2
    assert "WYOMING_URI must look like tcp://HOST:PORT" in capsys.readouterr().err


@dataclasses.dataclass(frozen=True)
class _ExampleOptions:
    enabled: bool = True
    rate: int = 16000
    label: str | None = None


def test_plugin_settings_come_from_the_yaml_table_then_env_with_one_conversion(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("zeroconf_enabled: 'off'\nplugins:\n  demo: {enabled: 'off', rate: '8000', label: x}\n")
    settings = load_settings(config_file=config, env={"DEMO_RATE": "22050"}, dotenv_file=None)
    options = settings.plugin_settings("demo", _ExampleOptions, {"rate": "DEMO_RATE", "label": "DEMO_LABEL"})
    assert options == _ExampleOptions(enabled=False, rate=22050, label="x")
    assert settings.zeroconf_enabled is False  # the core reads 'off' exactly as the plugin does
    with pytest.raises(ConfigError, match="DEMO_RATE"):
        load_settings(env={"DEMO_RATE": "fast"}, dotenv_file=None).plugin_settings(
            "demo", _ExampleOptions, {"rate": "DEMO_RATE"}
        )
    bad = tmp_path / "bad.yaml"
    bad.write_text("plugins:\n  demo: {enabled: perhaps}\n")
    with pytest.raises(ConfigError, match="plugins.demo.enabled"):
        load_settings(config_file=bad, env={}, dotenv_file=None).plugin_settings("demo", _ExampleOptions)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("plugins:\n  demo: {colour: red}\n")
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_settings(config_file=unknown, env={}, dotenv_file=None).plugin_settings("demo", _ExampleOptions)


def test_unknown_yaml_setting_is_an_error(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("prot: 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'prot'"):
        load_settings(config_file=config, env={}, dotenv_file=None)


def test_cli_reports_config_errors_and_exits_2():
    result = subprocess.run(
        [sys.executable, "-m", "sesame_voice", "voices"],
        env={"PORT": "nope", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "PORT" in result.stderr and "nope" in result.stderr


def test_say_writes_a_decodable_file(tmp_path, voices_dir, monkeypatch, transcribe, wer):
    monkeypatch.setenv("MODEL_ID", str(tmp_path))
    out = tmp_path / "hello.ogg"
    text = "Good morning, the coffee is ready."
    assert main(["say", text, "-o", str(out), "--voices-dir", str(voices_dir), "--voice", "joe"]) == 0
    samples, rate = decode_audio(out.read_bytes(), "opus")
    assert rate == 48000 and len(samples) / rate > 1.0
    assert wer(text, transcribe(samples, rate)) <= 0.1


def test_voices_command_lists_voices_and_broken_files(voices_dir, capsys):
    (voices_dir / "oops.yaml").write_text(": : :\n")
    assert main(["voices", "--json", "--voices-dir", str(voices_dir)]) == 0
    listing = json.loads(capsys.readouterr().out)
    names = {v["name"] for v in listing["voices"]}
    assert {"conversational", "professional", "fast", "whisper", "joe"} <= names
    assert "oops.yaml" in listing["errors"]
    conversational = next(v for v in listing["voices"] if v["name"] == "conversational")
    assert conversational["fallbacks"] == ["piper"] and "alloy" in conversational["aliases"]


def test_help_describes_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for command in ("serve", "voices", "say", "plugins", "discover"):
        assert command in text


def test_sentence_splitting_keeps_every_word():
    text = "Dr. Smith arrived at 3.30 p.m. today! Did he? " + ", ".join(["word"] * 300) + " end."
    sentences = split_sentences(text)
    assert sentences[0].startswith("Dr. Smith")
    assert all(len(s) <= 400 for s in sentences)
    assert " ".join(sentences).split() == text.split()


def test_sentence_stream_handles_mid_word_chunks():
    stream = SentenceStream()
    done = []
    for piece in ["Hel", "lo the", "re. How a", "re you? I am f", "ine"]:
        done += stream.add(piece)
    assert done == ["Hello there.", "How are you?"]
    assert stream.finish() == ["I am fine"]


def test_the_cache_of_older_releases_moves_to_the_new_folder(tmp_path, monkeypatch):
    from sesame_voice.app.runtime import adopt_old_cache
    from sesame_voice.config import Settings

    monkeypatch.setenv("HOME", str(tmp_path))
    old = tmp_path / ".cache" / "sesame-tts"
    (old / "prompts").mkdir(parents=True)
    (old / "prompts" / "clip.npz").write_bytes(b"tokens")
    settings = Settings(cache_dir=Path("~/.cache/sesame-voice").expanduser())
    assert adopt_old_cache(settings) == old
    assert (tmp_path / ".cache" / "sesame-voice" / "prompts" / "clip.npz").read_bytes() == b"tokens"
    assert not old.exists()
    assert adopt_old_cache(settings) is None  # once only; a custom CACHE_DIR is never touched
    (old / "x").mkdir(parents=True)
    assert adopt_old_cache(Settings(cache_dir=tmp_path / "custom")) is None and old.exists()


def test_say_writes_a_wav_whose_header_has_the_real_sizes(tmp_path, voices_dir, monkeypatch):
    import wave

    monkeypatch.setenv("MODEL_ID", str(tmp_path))
    out = tmp_path / "hello.wav"
    assert main(["say", "Good morning.", "-o", str(out), "--voices-dir", str(voices_dir), "--voice", "joe"]) == 0
    with wave.open(str(out)) as wav:
        seconds = wav.getnframes() / wav.getframerate()
    assert 0.3 < seconds < 5.0  # before: 0xFFFFFFFF sizes, which wave read as 27 hours
    assert out.stat().st_size == 44 + wav.getnframes() * 2


def test_say_into_a_missing_folder_is_one_clear_line(tmp_path, voices_dir, capsys):
    out = tmp_path / "missing_dir" / "x.wav"
    assert main(["say", "Hi.", "-o", str(out), "--voices-dir", str(voices_dir)]) == 1
    err = capsys.readouterr().err
    assert f"cannot write {out}" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_port_already_in_use_is_one_clear_line_and_exit_1(tmp_path, voices_dir):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "ZEROCONF_ENABLED": "false",
            "WYOMING_ENABLED": "false",
            "PRELOAD": "false",
            "VOICES_DIR": str(voices_dir),
            "CACHE_DIR": str(tmp_path / "cache"),
        }
        result = subprocess.run(
            [sys.executable, "-m", "sesame_voice", "serve"], env=env, capture_output=True, text=True, timeout=120
        )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("sesame-voice:")]
    assert len(lines) == 1 and "address already in use" in lines[0].lower()
