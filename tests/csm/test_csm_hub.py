"""CSM as a user's download holds it: the sesame/csm-1b layout in the standard Hugging Face cache, offline."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sesame_voice.api.errors import ProviderUnavailable
from sesame_voice.config import Settings

from .csm_helpers import collect, require, run

REPO = "sesame/csm-1b"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def hub_repo(tmp_path_factory) -> Path:
    """A tiny random CSM laid out exactly like the sesame/csm-1b repository (both formats, ckpt.pt, prompts)."""
    from sesame_voice_csm.mlx.testing import write_hub_repo

    return write_hub_repo(tmp_path_factory.mktemp("hub") / "csm-1b")


@pytest.fixture
def offline_cache(monkeypatch, tmp_path):
    """An empty standard HF hub cache under tmp_path, offline; returns its folder."""
    import huggingface_hub.constants

    hub = tmp_path / "hf" / "hub"
    hub.mkdir(parents=True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return hub


def _provider(tmp_path, model_id, **plugin):
    from sesame_voice_csm import CsmProvider

    plugin = {"backend": "mlx", "frame_budget_base_ms": 400, "frame_budget_per_char_ms": 0, **plugin}
    return CsmProvider(
        Settings(
            cache_dir=tmp_path / "cache", voices_dir=tmp_path, plugins={"csm": {"model_id": str(model_id), **plugin}}
        )
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_server_speaks_from_the_hub_layout_in_the_hf_cache_offline(hub_repo, tmp_path):
    """``hf download sesame/csm-1b`` done before; HF_HUB_OFFLINE=1; MODEL_ID=sesame/csm-1b."""
    import soundfile as sf
    from openai import OpenAI

    from sesame_voice_csm.mlx.testing import write_hf_cache

    hf_home = tmp_path / "hf-home"
    write_hf_cache(hf_home / "hub", REPO, hub_repo)
    cache_before = _files(hf_home)
    voices = tmp_path / "voices"
    shutil.copytree(ROOT / "voices", voices)
    config = tmp_path / "config.yaml"
    config.write_text(
        json.dumps({"plugins": {"csm": {"backend": "mlx", "frame_budget_base_ms": 400, "frame_budget_per_char_ms": 0}}})
    )
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HF_", "CSM_", "MODEL_ID", "CACHE_DIR", "SESAME_"))
    }
    env.update(
        HF_HOME=str(hf_home), HF_HUB_OFFLINE="1", MODEL_ID=REPO, CACHE_DIR=str(tmp_path / "cache"), LOG_LEVEL="info"
    )
    log = tmp_path / "server.log"
    with open(log, "wb") as output:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sesame_voice.app.cli",
                "serve",
                "--config",
                str(config),
                "--voices-dir",
                str(voices),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--disable",
                "wyoming",
                "--no-zeroconf",
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
        try:
            state = _wait_for_csm(f"http://127.0.0.1:{port}", server)
            assert state["state"] == "ready", f"{state}\n{log.read_text()}"
            client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0, timeout=300)
            response = client.audio.speech.with_raw_response.create(
                model="csm-1b", voice="professional", input="Hello there.", response_format="wav"
            )
            provider = response.headers["X-Sesame-Provider"]
            audio, rate = sf.read(io.BytesIO(response.content), dtype="float32")
        finally:
            server.terminate()
            server.wait(timeout=60)
    output = log.read_text()
    assert provider == "csm", output
    assert rate == 24_000 and len(audio) == 5 * 1920  # the 400 ms frame budget, all of it spoken
    assert "downloading" not in output.lower(), output
    assert _files(hf_home) == cache_before  # nothing was added to the HF cache
    manifests = list((tmp_path / "cache" / "csm" / "converted").glob("*/manifest.json"))
    assert len(manifests) == 1
    sources = sorted(Path(name).name for name in json.loads(manifests[0].read_text())["sources"])
    assert sources == [
        "config.json",
        "transformers-00001-of-00002.safetensors",
        "transformers-00002-of-00002.safetensors",
    ]  # model.safetensors and ckpt.pt never read


def _wait_for_csm(base_url: str, server) -> dict:
    """The CSM provider's state from /health once it is ready or failed (the server loads it in the background)."""
    import urllib.request

    deadline = time.monotonic() + 280
    state = {"state": "not started"}
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=5) as response:
                state = json.loads(response.read())["providers"]["csm"]
        except (OSError, KeyError, ValueError):
            pass
        if state.get("state") in ("ready", "failed"):
            return state
        time.sleep(0.5)
    return state


def test_a_partial_copy_in_the_cache_names_the_missing_files(hub_repo, offline_cache, tmp_path):
    from sesame_voice_csm.mlx.testing import write_hf_cache

    snapshot = write_hf_cache(
        offline_cache, REPO, hub_repo, skip=("transformers-00002-of-00002.safetensors", "tokenizer.json")
    )
    provider = _provider(tmp_path, REPO)
    with pytest.raises(ProviderUnavailable) as err:
        provider.ensure_loaded()
    message = str(err.value)
    assert "transformers-00002-of-00002.safetensors" in message and "tokenizer.json" in message, message
    assert str(snapshot) in message and "HF_HUB_OFFLINE" in message, message
    assert "transformers-00001-of-00002.safetensors" not in message
    assert not (tmp_path / "cache" / "csm" / "converted").exists()  # nothing was converted from the partial copy


def test_cached_prompts_alone_are_not_taken_for_a_model(hub_repo, offline_cache, tmp_path):
    """Fetching a built-in prompt puts the repo's snapshot folder in the cache; it is not a model."""
    from sesame_voice_csm.mlx.testing import write_hf_cache

    only_prompts = tmp_path / "prompts-only"
    shutil.copytree(hub_repo / "prompts", only_prompts / "prompts")
    write_hf_cache(offline_cache, REPO, only_prompts)
    with pytest.raises(ProviderUnavailable) as err:
        _provider(tmp_path, REPO).ensure_loaded()
    assert "config.json" in str(err.value) and "not completely in the Hugging Face cache" in str(err.value)


def test_offline_and_not_cached_says_so_and_where_it_looked(offline_cache, tmp_path):
    with pytest.raises(ProviderUnavailable) as err:
        _provider(tmp_path, REPO).ensure_loaded()
    message = str(err.value)
    assert "not completely in the Hugging Face cache" in message and str(offline_cache) in message, message
    assert "HF_HUB_OFFLINE" in message and "licence" not in message


def test_both_formats_side_by_side_load_the_transformers_shards_and_speak_like_the_original(
    hub_repo, tmp_path, make_job
):
    """The converted transformers shards (CSM and bundled Mimi) generate exactly what the original files do."""
    only_original = tmp_path / "original"
    only_original.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(hub_repo / name, only_original / name)
    both = _provider(tmp_path / "both", hub_repo)
    both.ensure_loaded()
    assert both.backend.loaded.weight_format == "transformers"
    assert [p.name for p in both.backend.loaded.weight_files] == [
        "transformers-00001-of-00002.safetensors",
        "transformers-00002-of-00002.safetensors",
    ]
    assert both.backend.loaded.mimi_file.parent.parent.name == "converted"  # Mimi came out of the shards
    original = _provider(tmp_path / "original-run", only_original, mimi=str(_kyutai_mimi(hub_repo, tmp_path)))
    original.ensure_loaded()
    assert original.backend.loaded.weight_format == "original"
    np.testing.assert_array_equal(collect(original, make_job(seed=3)), collect(both, make_job(seed=3)))


def _kyutai_mimi(hub_repo: Path, tmp_path: Path) -> Path:
    """The bundled Mimi converted back by the provider is Kyutai's file: compare against a fresh conversion."""
    import mlx.core as mx

    from sesame_voice_csm.common.checkpoint import kyutai_mimi_weights

    codec = {}
    for shard in sorted(hub_repo.glob("transformers-*.safetensors")):
        codec.update(
            {k.removeprefix("codec_model."): v for k, v in mx.load(str(shard)).items() if k.startswith("codec_model.")}
        )
    path = tmp_path / "kyutai-mimi.safetensors"
    mx.save_safetensors(str(path), kyutai_mimi_weights(codec, 8, 8))
    return path


def test_each_file_format_comes_from_its_tensor_names_not_its_file_name(hub_repo, tmp_path):
    from sesame_voice_csm.common.checkpoint import ORIGINAL, TRANSFORMERS, file_format, select_weights

    folder = tmp_path / "renamed"
    folder.mkdir()
    shutil.copy(hub_repo / "model.safetensors", folder / "transformers-00001-of-00001.safetensors")
    shutil.copy(hub_repo / "transformers-00001-of-00002.safetensors", folder / "a-model.safetensors")
    shutil.copy(hub_repo / "transformers-00002-of-00002.safetensors", folder / "b-model.safetensors")
    assert file_format(folder / "transformers-00001-of-00001.safetensors") == ORIGINAL
    assert file_format(folder / "a-model.safetensors") == TRANSFORMERS
    selection = select_weights(folder)
    assert selection.format == TRANSFORMERS
    assert [p.name for p in selection.files] == ["a-model.safetensors", "b-model.safetensors"]
    assert [p.name for p in selection.ignored] == ["transformers-00001-of-00001.safetensors"]


def test_a_converted_copy_that_no_longer_matches_its_source_is_converted_again(hub_repo, tmp_path):
    from sesame_voice_csm.common.checkpoint import convert_transformers, select_weights

    folder = tmp_path / "model"
    shutil.copytree(hub_repo, folder)
    selection = select_weights(folder)
    target = convert_transformers(selection, tmp_path / "converted")
    first = (target / "manifest.json").read_text()
    assert convert_transformers(selection, tmp_path / "converted") == target
    assert (target / "manifest.json").read_text() == first  # reused while the source is the same
    shard = folder / "transformers-00002-of-00002.safetensors"
    os.utime(shard, ns=(shard.stat().st_atime_ns, shard.stat().st_mtime_ns + 10**9))
    convert_transformers(select_weights(folder), tmp_path / "converted")
    assert (target / "manifest.json").read_text() != first


def test_the_tiny_shards_are_what_transformers_csm_loads(hub_repo, tmp_path):
    """The tiny shards' names and shapes (CSM and the bundled ``codec_model``) are exactly what transformers'
    own ``CsmForConditionalGeneration`` loads, so the converter reads the real repo's names (needs PyTorch)."""
    require("torch", "torch", "torch")
    import mlx.core as mx
    from transformers import CsmForConditionalGeneration

    weights = {}
    for shard in sorted(hub_repo.glob("transformers-*.safetensors")):
        weights.update(mx.load(str(shard)))
    assert any(name.startswith("codec_model.") for name in weights)
    folder = tmp_path / "csm"
    folder.mkdir()
    mx.save_safetensors(str(folder / "model.safetensors"), weights)
    shutil.copy(hub_repo / "config.json", folder / "config.json")
    _, info = CsmForConditionalGeneration.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info


def test_builtin_prompts_come_from_the_cached_repo_with_the_providers_own_transcripts(
    hub_repo, offline_cache, tmp_path, make_job, caplog
):
    from sesame_voice_csm.common.builtin import TRANSCRIPTS
    from sesame_voice_csm.mlx.testing import write_hf_cache

    snapshot = write_hf_cache(offline_cache, REPO, hub_repo)
    provider = _provider(tmp_path, REPO)
    provider.ensure_loaded()
    _, stats = run(provider, make_job(prompt="conversational_a", seed=1))
    assert provider._builtin_prompts["conversational_a"] == (
        str(snapshot / "prompts" / "conversational_a.wav"),
        TRANSCRIPTS["conversational_a"],
    )
    assert stats.prefill_positions > 50  # the clip and its transcript conditioned the voice
    collect(provider, make_job(prompt="read_speech_a", seed=1))  # the repo has its clip but no transcript
    assert provider._builtin_prompts["read_speech_a"] is None
    assert "read_speech_a has no transcript" in caplog.text
