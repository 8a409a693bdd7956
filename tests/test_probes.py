"""/health/live and /health/ready for orchestrators, and the instance label on every metric."""

from __future__ import annotations

import asyncio
import io
import signal
import socket
import threading

import aiohttp
import numpy as np
import pytest
import soundfile as sf
from prometheus_client.parser import text_string_to_metric_families
from replicas import free_port, spawn_server, stop, wait_for

from fakes import FakePlugin, ToneProvider, UnloadableProvider
from sesame_voice import Voice
from support import SENTENCES


class GatedProvider(ToneProvider):
    """A tone provider whose model loads only when the test opens ``gate``."""

    name = "gated"
    gate = threading.Event()

    def load(self) -> None:
        assert self.gate.wait(60), "the test never opened the gate"

    def default_voices(self):
        return [Voice(name="gated", provider=self.name)]


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, dict]:
    async with http.get(url) as response:
        return response.status, await response.json()


async def test_ready_waits_for_the_default_voices_provider_to_load(start_server):
    GatedProvider.gate.clear()
    try:
        async with start_server(
            plugins=[FakePlugin(GatedProvider)], entry_points=False, default_voice="gated", api_key="s3cret"
        ) as server:
            base = f"http://127.0.0.1:{server.http_port}"
            async with aiohttp.ClientSession() as http:
                assert await _get(http, f"{base}/health/live") == (200, {"status": "alive"})
                status, report = await _get(http, f"{base}/health/ready")
                assert status == 503 and report["status"] == "not_ready"
                assert "gated loading" in report["reason"]
                GatedProvider.gate.set()
                report = await wait_for(f"{base}/health/ready")
                assert report == {"status": "ready", "voice": "gated", "provider": "gated"}
                async with http.get(f"{base}/metrics") as response:
                    assert response.status == 401  # the probes are public, the rest still needs the key
    finally:
        GatedProvider.gate.set()


async def test_ready_counts_a_loaded_fallback_and_refuses_when_none_can_speak(start_server):
    plugins = [FakePlugin(UnloadableProvider, ToneProvider)]
    async with start_server(plugins=plugins, entry_points=False, default_voice="needs-fallback") as server:
        report = await wait_for(f"http://127.0.0.1:{server.http_port}/health/ready")
        assert report["provider"] == "tone"
    async with start_server(
        plugins=[FakePlugin(UnloadableProvider)], entry_points=False, default_voice="needs-fallback"
    ) as server:
        base = f"http://127.0.0.1:{server.http_port}"
        async with aiohttp.ClientSession() as http:
            for _ in range(100):  # until the preload has failed (it may still be loading at first)
                status, report = await _get(http, f"{base}/health/ready")
                assert status == 503
                if "failed" in report["reason"]:
                    break
                await asyncio.sleep(0.1)
            assert "unloadable failed" in report["reason"] and "needs-fallback" in report["reason"]
            assert (await _get(http, f"{base}/health/live"))[0] == 200


async def test_probes_are_in_the_openapi_document(start_server):
    async with start_server(plugins=[FakePlugin(ToneProvider)], entry_points=False, default_voice="tone") as server:
        async with aiohttp.ClientSession() as http:
            _, document = await _get(http, f"http://127.0.0.1:{server.http_port}/openapi.json")
    assert set(document["paths"]["/health/ready"]["get"]["responses"]) == {"200", "503"}
    assert "200" in document["paths"]["/health/live"]["get"]["responses"]
    assert "/health" in document["paths"]


@pytest.mark.parametrize("configured", ["replica-a", ""])
async def test_every_metric_carries_the_instance_label(start_server, configured):
    async with start_server(plugins=[FakePlugin(ToneProvider)], metrics_instance=configured) as server:
        async with aiohttp.ClientSession() as http:
            body = {"model": "tts-1", "voice": "tone", "input": "Hello there.", "response_format": "wav"}
            async with http.post(f"http://127.0.0.1:{server.http_port}/v1/audio/speech", json=body) as response:
                assert response.status == 200
                await response.read()
            async with http.get(f"http://127.0.0.1:{server.http_port}/metrics") as response:
                families = list(text_string_to_metric_families(await response.text()))
        expected = configured or f"{socket.gethostname()}:{server.http_port}"
    samples = [sample for family in families for sample in family.samples]
    names = {sample.name for sample in samples}
    assert {
        "sesame_voice_requests_total",
        "sesame_voice_queue_depth",
        "sesame_voice_request_duration_seconds_bucket",
    } <= names
    assert {sample.labels.get("instance") for sample in samples} == {expected}


async def test_probes_follow_a_real_server_through_start_and_sigterm(tmp_path):
    """Not ready while the default voice is missing; ready once it exists; 503 from SIGTERM on, still live."""
    (tmp_path / "voices").mkdir()
    port = free_port()
    process = spawn_server(tmp_path, port, DEFAULT_VOICE="narrator", SHUTDOWN_GRACE="60", VOICES_POLL_INTERVAL="0.2")
    base = f"http://127.0.0.1:{port}"
    text = " ".join(SENTENCES * 2)
    try:
        await wait_for(f"{base}/health/live", process)
        async with aiohttp.ClientSession() as http:
            status, report = await _get(http, f"{base}/health/ready")
        assert status == 503 and "narrator" in report["reason"]
        (tmp_path / "voices" / "narrator.yaml").write_text("provider: piper\nparams: {length_scale: 1.1}\n")
        assert (await wait_for(f"{base}/health/ready", process))["provider"] == "piper"
        # One connection kept alive across the signal (new ones are refused once the server stops
        # listening), and a slowly read stream that keeps the server draining meanwhile.
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as probe,
            aiohttp.ClientSession(read_bufsize=4096) as client,
        ):
            assert (await _get(probe, f"{base}/health/ready"))[0] == 200
            body = {"model": "tts-1", "input": text, "response_format": "wav"}
            async with client.post(f"{base}/v1/audio/speech", json=body) as response:
                assert response.status == 200 and response.headers["X-Sesame-Voice"] == "narrator"
                received = bytearray(await response.content.readexactly(4096))
                process.send_signal(signal.SIGTERM)
                status, report = await _wait_status(probe, f"{base}/health/ready", 503)
                assert report == {"status": "shutting_down", "reason": "the server is shutting down"}
                assert (await _get(probe, f"{base}/health/live"))[0] == 200
                async for block in response.content.iter_chunked(8192):
                    received.extend(block)
        assert await asyncio.to_thread(process.wait, 60) == 0
    finally:
        stop(process)
    samples, rate = sf.read(io.BytesIO(bytes(received)), dtype="float32")
    assert len(samples) / rate > 5.0 and np.abs(samples).max() > 0.05  # the whole stream arrived


async def _wait_status(http: aiohttp.ClientSession, url: str, wanted: int) -> tuple[int, dict]:
    """GET ``url`` on ``http``'s kept-alive connection until it answers ``wanted`` (at most 30 s)."""
    for _ in range(300):
        status, report = await _get(http, url)
        if status == wanted:
            return status, report
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} kept answering {status}")
