"""Soak: mixed load against one sesame-voice server (a child process) for a while; RSS, latencies, errors.

Kinds of request, in rotation: speech in every response format, transcriptions (WAV/MP3/FLAC of
the Piper voice), fuzzed bodies (schemathesis cases from /openapi.json, every route), Wyoming TTS
and STT through wyoming's AsyncTcpClient, and sessions over REST and WebSocket when the server has
those routes. Prints RSS (from /proc) at start, after warm-up and at the end, p50/p95 latency per
kind, and counts of answers by status; anything but 2xx and documented 4xx/429/503 is an error.

    python benchmarks/soak.py [--minutes 30] [--warm-up-minutes 2] [--clients 2]
                              [--fuzz-examples 10] [--fuzz-only] [--tiny-csm]

``--tiny-csm`` turns CSM on with a tiny random checkpoint (torch backend), and speech alternates
between the Piper voice and the CSM preset ``maya``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0]).resolve() == REPO / "benchmarks":
    sys.path.pop(0)  # benchmarks/wyoming.py would shadow the wyoming package
FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
TEXT = "The kitchen lights are on, and the weather is sunny today."


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def serve(http_port: int, wyoming_port: int, csm_model: str = "") -> None:
    from sesame_voice.app.plugins import make_plugin_manager
    from sesame_voice.app.server import Server
    from sesame_voice.config import load_settings

    settings = load_settings(
        env={},
        dotenv_file=None,
        host="127.0.0.1",
        port=http_port,
        zeroconf_enabled=False,
        voices_dir=REPO / "voices",
        log_level="error",
        disabled_plugins=() if csm_model else ("csm",),
        plugins={"wyoming": {"uri": f"tcp://127.0.0.1:{wyoming_port}"}, "csm": csm_settings(csm_model)},
    )
    async with Server(settings, pm=make_plugin_manager(disabled=settings.disabled_plugins)) as server:
        await server.serve_forever()


def csm_settings(model: str) -> dict:
    """``plugins.csm`` for a tiny random CSM on the torch backend (budgets short: it never says EOS)."""
    if not model:
        return {}
    return {
        "model_id": model,
        "backend": "torch",
        "dtype": "float32",
        "first_chunk_frames": 2,
        "chunk_frames": 3,
        "frame_budget_base_ms": 160,
        "frame_budget_per_char_ms": 8,
    }


def _has_code(response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    error = body.get("error", body) if isinstance(body, dict) else None
    return isinstance(error, dict) and bool(error.get("code"))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Load:
    """One client's requests; records (kind, seconds, status) into ``results``."""

    def __init__(self, base: str, wyoming_port: int, results: dict, fuzz_cases: list, speech: dict[str, bytes]):
        self.base, self.wyoming_port, self.results = base, wyoming_port, results
        self.fuzz_cases, self.speech = fuzz_cases, speech
        self.csm = False

    async def timed(self, kind: str, call) -> None:
        started = time.perf_counter()
        try:
            status = await call()
        except Exception as err:  # noqa: BLE001 - a failed call is counted, not fatal
            status = f"exception {type(err).__name__}: {err}"[:120]
        self.results[kind].append((time.perf_counter() - started, status))

    async def speech_request(self, session, fmt: str, voice: str = "joe") -> int:
        body = {"model": "tts-1", "voice": voice, "input": TEXT, "response_format": fmt}
        async with session.post(f"{self.base}/v1/audio/speech", json=body) as response:
            await response.read()
            return response.status

    async def transcription(self, session, fmt: str) -> int:
        import aiohttp

        form = aiohttp.FormData()
        form.add_field("file", self.speech[fmt], filename=f"speech.{fmt}")
        form.add_field("model", "whisper-1")
        async with session.post(f"{self.base}/v1/audio/transcriptions", data=form) as response:
            await response.read()
            return response.status

    async def fuzzed(self, session) -> int:
        case = random.choice(self.fuzz_cases)
        response = await asyncio.to_thread(case.call, base_url=self.base, timeout=120)
        if response.status_code == 503 and _has_code(response):
            return 503  # documented: no provider can serve, with a machine-readable code
        if response.status_code >= 500:
            return f"{response.status_code} {case.method} {case.path}"
        return response.status_code

    async def wyoming_tts_stt(self) -> int:
        from wyoming.asr import Transcribe, Transcript
        from wyoming.audio import AudioChunk, AudioStop
        from wyoming.client import AsyncTcpClient
        from wyoming.tts import Synthesize

        chunks = []
        async with AsyncTcpClient("127.0.0.1", self.wyoming_port) as client:
            await client.write_event(Synthesize(text=TEXT).event())
            while (event := await client.read_event()) is not None and not AudioStop.is_type(event.type):
                if AudioChunk.is_type(event.type):
                    chunks.append(AudioChunk.from_event(event))
        async with AsyncTcpClient("127.0.0.1", self.wyoming_port) as client:
            await client.write_event(Transcribe().event())
            from wyoming.audio import AudioStart

            first = chunks[0]
            await client.write_event(AudioStart(rate=first.rate, width=first.width, channels=first.channels).event())
            for chunk in chunks:
                await client.write_event(chunk.event())
            await client.write_event(AudioStop().event())
            while (event := await client.read_event()) is not None:
                if Transcript.is_type(event.type):
                    return 200
        return 599

    async def sessions(self, session) -> int:
        async with session.post(f"{self.base}/v1/sessions", json={"voice": "joe"}) as response:
            if response.status == 404:
                return 404
            if response.status >= 300:
                return response.status
            session_id = (await response.json())["id"]
        async with session.ws_connect(f"{self.base}/v1/sessions/{session_id}/ws") as ws:
            await ws.send_json({"type": "speak", "text": TEXT})
            async for message in ws:
                if message.type.name != "TEXT" or '"done"' in message.data or '"error"' in message.data:
                    break
        async with session.delete(f"{self.base}/v1/sessions/{session_id}") as response:
            return response.status

    async def run(self, until: float, fuzz_only: bool = False) -> None:
        import aiohttp

        step = 0
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
            while time.monotonic() < until:
                if fuzz_only:
                    await self.timed("fuzzed", lambda: self.fuzzed(session))
                    continue
                fmt = FORMATS[step % len(FORMATS)]
                await self.timed(f"speech {fmt}", lambda fmt=fmt: self.speech_request(session, fmt))
                if self.csm:
                    await self.timed(f"speech csm {fmt}", lambda fmt=fmt: self.speech_request(session, fmt, "maya"))
                if fmt in ("wav", "mp3", "flac"):
                    await self.timed("transcription", lambda fmt=fmt: self.transcription(session, fmt))
                for _ in range(3):
                    await self.timed("fuzzed", lambda: self.fuzzed(session))
                if step % 3 == 0:
                    await self.timed("wyoming tts+stt", self.wyoming_tts_stt)
                if step % 6 == 0:
                    await self.timed("session rest+ws", lambda: self.sessions(session))
                step += 1


def allowed(status) -> bool:
    return isinstance(status, int) and (status < 400 or status in (400, 401, 404, 405, 409, 413, 415, 429, 503))


async def main(args) -> None:
    import aiohttp
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    load_at_start = f"{os.getloadavg()[0]:.1f}"
    http_port, wyoming_port = free_port(), free_port()
    csm_model = ""
    if args.tiny_csm:  # what transformers' save_pretrained writes, random weights (no model hub here)
        from sesame_voice_csm.torch.testing import write_transformers_checkpoint

        csm_model = str(write_transformers_checkpoint(Path(tempfile.mkdtemp(prefix="soak-csm-")) / "model"))
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(http_port), str(wyoming_port), csm_model])
    base = f"http://127.0.0.1:{http_port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                if child.poll() is not None:
                    raise SystemExit(f"the server exited with {child.returncode} before it was ready")
                try:
                    async with session.get(f"{base}/health") as response:
                        health = await response.json()
                    if all(p.get("state") == "ready" for p in health["speech_to_text"].values()):
                        break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.5)
        rss = {"start": rss_mb(child.pid)}
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        cases: list = []
        for result in schema.get_all_operations():

            @given(case=result.ok().as_strategy())
            @settings(
                max_examples=args.fuzz_examples,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def collect(case) -> None:
                cases.append(case)

            collect()
        speech = {}
        async with aiohttp.ClientSession() as session:
            for fmt in ("wav", "mp3", "flac"):
                async with session.post(
                    f"{base}/v1/audio/speech",
                    json={"model": "tts-1", "voice": "joe", "input": TEXT, "response_format": fmt},
                ) as response:
                    speech[fmt] = await response.read()
        results: dict = defaultdict(list)
        clients = [Load(base, wyoming_port, results, cases, speech) for _ in range(args.clients)]
        for client in clients:
            client.csm = args.tiny_csm
        warm_until = time.monotonic() + args.warm_up_minutes * 60
        await asyncio.gather(*(client.run(warm_until, args.fuzz_only) for client in clients))
        rss["after warm-up"] = rss_mb(child.pid)
        results.clear()
        until = time.monotonic() + args.minutes * 60
        samples = []

        async def sample_rss() -> None:
            while time.monotonic() < until:
                samples.append(rss_mb(child.pid))
                await asyncio.sleep(10)

        await asyncio.gather(sample_rss(), *(client.run(until, args.fuzz_only) for client in clients))
        rss["end"] = rss_mb(child.pid)
    finally:
        child.terminate()
        child.wait(30)
    mode = (" (fuzzed bodies only)" if args.fuzz_only else "") + (", tiny random CSM on" if args.tiny_csm else "")
    print(f"soak{mode}: {args.minutes:g} min after {args.warm_up_minutes:g} min warm-up, {args.clients} clients")
    print(f"load average: {load_at_start} at start, {os.getloadavg()[0]:.1f} at the end ({os.cpu_count()} CPUs)")
    print(f"fuzz cases: {len(cases)} ({args.fuzz_examples} examples per operation)")
    for name, value in rss.items():
        print(f"RSS {name}: {value:.0f} MB")
    growth = (rss["end"] - rss["after warm-up"]) / rss["after warm-up"] * 100
    print(f"RSS growth after warm-up: {growth:+.1f}% (max sampled {max(samples or [rss['end']]):.0f} MB)")
    if samples:
        step = max(1, len(samples) // 10)
        print("RSS samples (MB, evenly spaced):", " ".join(f"{value:.0f}" for value in samples[::step]))
    errors = 0
    print(f"{'kind':18} {'n':>5} {'p50 s':>7} {'p95 s':>7}  statuses")
    for kind, entries in sorted(results.items()):
        seconds = sorted(s for s, _ in entries)
        p95 = seconds[min(len(seconds) - 1, int(0.95 * len(seconds)))]
        statuses: dict = defaultdict(int)
        for _, status in entries:
            statuses[status] += 1
            errors += not allowed(status)
        print(f"{kind:18} {len(entries):5d} {statistics.median(seconds):7.3f} {p95:7.3f}  {dict(statuses)}")
    print(f"errors (not 2xx/3xx or a documented 4xx/429/503): {errors}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        asyncio.run(serve(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else ""))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--warm-up-minutes", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--fuzz-examples", type=int, default=10, help="schemathesis examples per operation")
    parser.add_argument("--tiny-csm", action="store_true", help="CSM on: a tiny random checkpoint, torch backend")
    parser.add_argument("--fuzz-only", action="store_true", help="only fuzzed bodies (the RSS growth of issue 18)")
    os.chdir(REPO)
    asyncio.run(main(parser.parse_args()))
