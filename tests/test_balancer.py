"""The documented HAProxy config (deploy/haproxy/haproxy.cfg) in front of two real replicas (Piper voice)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

import aiohttp
import numpy as np
import pytest
import soundfile as sf
from prometheus_client.parser import text_string_to_metric_families
from replicas import free_port, spawn_server, stop

from support import REPO, SENTENCES

CONFIG = REPO / "deploy" / "haproxy" / "haproxy.cfg"
HAPROXY = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")

pytestmark = pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed (Debian: apt-get install haproxy)")


def _get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, {}
    except OSError:
        return 0, {}


def _wait(condition, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def server_states(stats: str) -> dict[str, str]:
    """replica name -> UP / DOWN / … from HAProxy's CSV statistics."""
    with urllib.request.urlopen(f"http://{stats}/stats;csv", timeout=5) as response:
        rows = response.read().decode().splitlines()
    header = rows[0].lstrip("# ").split(",")
    found = {}
    for row in rows[1:]:
        fields = dict(zip(header, row.split(",")))
        if fields.get("pxname") == "replicas" and fields.get("svname", "").startswith("replica"):
            found[fields["svname"]] = fields["status"].split()[0]
    return found


@pytest.fixture(scope="module")
def balanced(tmp_path_factory):
    """Two replicas and HAProxy with the documented config: (balancer URL, {name: (URL, process)}, stats)."""
    root = tmp_path_factory.mktemp("balanced")
    replicas = {}
    for name in ("replica1", "replica2"):
        port = free_port()
        replicas[name] = (f"http://127.0.0.1:{port}", spawn_server(root / name, port, SHUTDOWN_GRACE="30"))
    listen, stats = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "SESAME_LISTEN": listen,
        "HAPROXY_STATS": stats,
        "SESAME_REPLICA_1": replicas["replica1"][0][7:],
        "SESAME_REPLICA_2": replicas["replica2"][0][7:],
    }
    log = open(root / "haproxy.log", "wb")
    haproxy = subprocess.Popen([HAPROXY, "-db", "-f", str(CONFIG)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for url, process in replicas.values():
            _wait(
                lambda url=url, process=process: process.poll() is None and _get_json(f"{url}/health/ready")[0] == 200,
                f"{url} ready",
            )

        def both_up() -> bool:
            assert haproxy.poll() is None, (root / "haproxy.log").read_text()
            try:
                return server_states(stats) == {"replica1": "UP", "replica2": "UP"}
            except OSError:  # HAProxy not listening yet
                return False

        _wait(both_up, "HAProxy to see both replicas up")
        yield f"http://{listen}", replicas, stats
    finally:
        stop(haproxy)
        log.close()
        for _, process in replicas.values():
            stop(process)


def _requests_counted(url: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "sesame_voice_requests_total"
    )


async def test_streamed_speech_passes_through_unbuffered(balanced):
    base, replicas, _ = balanced
    text = " ".join(SENTENCES * 8)
    body = {"model": "tts-1", "voice": "conversational", "input": text, "response_format": "wav"}
    before = {name: await asyncio.to_thread(_requests_counted, url) for name, (url, _) in replicas.items()}
    async with aiohttp.ClientSession(read_bufsize=4096) as http:
        async with http.post(f"{base}/v1/audio/speech", json=body) as response:
            assert response.status == 200 and response.headers["X-Sesame-Provider"] == "piper"
            name = response.headers["X-Sesame-Replica"]
            replica, rate = replicas[name][0], int(response.headers["X-Sample-Rate"])
            received = bytearray(await response.content.readexactly(4096))
            # The first audio reached us through HAProxy while the replica was still speaking:
            # it counts a request only when its last byte has been written.
            assert await asyncio.to_thread(_requests_counted, replica) == before[name]
            received.extend(await response.read())
    samples, read_rate = sf.read(io.BytesIO(bytes(received)), dtype="float32")
    assert read_rate == rate and len(samples) / rate > 20 and np.abs(samples).max() > 0.05
    assert await asyncio.to_thread(_requests_counted, replica) == before[name] + 1


async def _next_json(ws) -> dict:
    message = await ws.receive(timeout=120)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    return json.loads(message.data)


async def test_a_websocket_conversation_passes_through(balanced, transcribe, wer):
    base, _, _ = balanced
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{base}/ws") as ws:
            welcome = await _next_json(ws)
            assert welcome["type"] == "welcome" and welcome["audio"]["sample_rate"] == 24000
            await ws.send_json({"type": "add_turn", "text": "I had a long day.", "speaker": 1})
            assert (await _next_json(ws))["type"] == "turn_added"
            await ws.send_json({"type": "speak", "text": SENTENCES[0], "speaker": 0})
            start = await _next_json(ws)
            assert start["type"] == "audio_start" and start["provider"] == "piper"
            frames = []
            while (message := await ws.receive(timeout=120)).type == aiohttp.WSMsgType.BINARY:
                frames.append(message.data)
            done = json.loads(message.data)
            assert done["type"] == "done" and done["frames"] == len(frames) and done["kept"] is True
            await ws.send_json({"type": "history"})
            turns = (await _next_json(ws))["session"]["turns"]
            assert [turn["text"] for turn in turns] == ["I had a long day.", SENTENCES[0]]
    samples, rate = sf.read(
        io.BytesIO(b"".join(frames)),
        format="RAW",
        subtype="FLOAT",
        endian="LITTLE",
        samplerate=24000,
        channels=1,
        dtype="float32",
    )
    assert wer(SENTENCES[0], transcribe(samples, rate)) <= 0.15


async def test_requests_spread_over_both_and_a_stopped_replica_is_taken_out(balanced):
    base, replicas, stats = balanced
    body = {"model": "tts-1", "voice": "conversational", "input": "Hello there.", "response_format": "wav"}

    async def served_by() -> str:
        async with http.post(f"{base}/v1/audio/speech", json=body) as response:
            assert response.status == 200
            samples, _ = sf.read(io.BytesIO(await response.read()))
            assert len(samples) > 0
            return response.headers["X-Sesame-Replica"]

    async with aiohttp.ClientSession() as http:
        assert {await served_by() for _ in range(4)} == {"replica1", "replica2"}  # leastconn alternates when idle
        replicas["replica1"][1].send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(replicas["replica1"][1].wait, 60) == 0
        # Whether or not its health check has noticed yet, nothing fails: refused connections are retried.
        assert {await served_by() for _ in range(4)} == {"replica2"}
    await asyncio.to_thread(_wait, lambda: server_states(stats)["replica1"] == "DOWN", "replica1 marked down", 30)
