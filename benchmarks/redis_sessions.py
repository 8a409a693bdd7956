"""What a conversation turn costs in Redis (round trips and bytes), next to the memory store, in one run.

One real `sesame-voice serve` process (Piper voice) per store, both started here: `memory`, and
`redis://` on a `redis-server` started here too. The same conversation runs on each: create a
session, then --turns rounds of (a user turn with --seconds of 48 kHz audio over REST, the server
speaking a sentence). For the Redis store every request's cost is read from Redis itself: round
trips (INFO commandstats: the store sends only EVALSHA scripts for these requests, one per round
trip; a background expiry sweep, one script + one ZRANGE every 10 s, is counted apart and
subtracted), the commands those scripts ran inside Redis, and bytes in and out (INFO stats
total_net_input_bytes / total_net_output_bytes), minus the benchmark's own INFO calls. Every
request's latency is timed on both stores; all cases are printed, not only means.

    python benchmarks/redis_sessions.py [--turns 10] [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
SENTENCE = "That sounds like a good plan, let us talk it through tomorrow morning."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(root: Path, port: int, store: str) -> subprocess.Popen:
    for name in ("home", "cwd"):
        (root / name).mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(root / "home"),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "CACHE_DIR": str(root / "cache"),
        "VOICES_DIR": str(root / "voices"),
        "WYOMING_ENABLED": "false",
        "ZEROCONF_ENABLED": "false",
        "DISABLED_PLUGINS": "csm,whisper",
        "HF_HUB_OFFLINE": "1",
        "SESSION_STORE": store,
    }
    return subprocess.Popen([sys.executable, "-m", "sesame_voice", "serve"], cwd=root / "cwd", env=env)


def start_redis(folder: Path) -> tuple[subprocess.Popen, int]:
    binary = shutil.which("redis-server") or shutil.which("valkey-server")
    if binary is None:
        sys.exit("redis-server is not installed (Debian: apt-get install redis-server)")
    port = free_port()
    args = ["--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder), "--save", ""]
    args += ["--appendonly", "yes", "--appendfsync", "always"]
    return subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL), port


class RedisMeter:
    """Commands and network bytes Redis counted since the last ``take``, less the meter's own INFO calls."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.last = self._read()
        self.overhead = (0, 0, 0, 0, 0)
        for _ in range(3):  # what the meter's own INFO calls add to a delta (a few bytes of noise remain)
            self.overhead = self.take()

    def _read(self) -> tuple[int, ...]:
        """(scripts, sweeps, other commands, bytes in, bytes out) so far."""
        stats = self.client.info("stats")
        commands = {k: v["calls"] for k, v in self.client.info("commandstats").items() if k != "cmdstat_info"}
        scripts = commands.get("cmdstat_evalsha", 0) + commands.get("cmdstat_eval", 0)
        sweeps = commands.get("cmdstat_zrange", 0)
        other = sum(commands.values()) - scripts - sweeps
        return scripts, sweeps, other, stats["total_net_input_bytes"], stats["total_net_output_bytes"]

    def take(self) -> tuple[int, ...]:
        now = self._read()
        delta = tuple(b - a - o for a, b, o in zip(self.last, now, self.overhead))
        self.last = self._read()
        return delta  # type: ignore[return-value]


async def wait_ready(url: str, process: subprocess.Popen) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(900):
            assert process.poll() is None, "the server exited"
            try:
                async with http.get(f"{url}/health/ready") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"{url} never became ready")


def upload(seconds: float) -> str:
    t = np.arange(int(seconds * 48000)) / 48000
    buffer = io.BytesIO()
    sf.write(buffer, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 48000, format="WAV", subtype="PCM_16")
    return base64.b64encode(buffer.getvalue()).decode()


async def timed(http, url: str, kind: str, index: int, path: str, body: dict, meter: RedisMeter | None) -> dict:
    """One request, read to the end; its latency and (with a meter) what Redis did for it."""
    if meter:
        meter.take()
    start = time.perf_counter()
    async with http.post(url + path, json=body) as response:
        payload = await response.read()
        assert response.status in (200, 201), payload[:300]
    row = {"kind": kind, "turn": index, "ms": 1000 * (time.perf_counter() - start), "payload": payload}
    if meter:
        scripts, sweeps, inner, row["bytes_in"], row["bytes_out"] = meter.take()
        row["round_trips"], row["sweeps"], row["inner"] = scripts - sweeps, sweeps, inner
    return row


async def conversations(urls: dict, turns: int, seconds: float, meter: RedisMeter | None) -> dict[str, list[dict]]:
    """The same conversation on every server, interleaved request by request (like with like under
    the same load); one row per request: kind, turn, latency and, on the Redis server, its cost."""
    audio = upload(seconds)
    rows: dict[str, list[dict]] = {store: [] for store in urls}
    sids = {}
    async with aiohttp.ClientSession() as http:
        for store, url in urls.items():
            row = await timed(http, url, "create", 0, "/v1/sessions", {}, meter if store == "redis" else None)
            rows[store].append(row)
            sids[store] = json.loads(row["payload"])["id"]
        for index in range(1, turns + 1):
            for kind, body in (("add_turn", {"text": "I have a plan.", "audio": audio}), ("speak", {"text": SENTENCE})):
                for store, url in urls.items():
                    path = f"/v1/sessions/{sids[store]}/{'turns' if kind == 'add_turn' else kind}"
                    rows[store].append(
                        await timed(http, url, kind, index, path, body, meter if store == "redis" else None)
                    )
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds of 48 kHz audio in each user turn")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "redis").mkdir()
        redis_process, redis_port = start_redis(root / "redis")
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        processes = []
        try:
            urls = {}
            for store, value in (("memory", "memory"), ("redis", redis_url)):
                port = free_port()
                processes.append(start_server(root / store, port, value))
                urls[store] = f"http://127.0.0.1:{port}"
            for url, process in zip(urls.values(), processes):
                await wait_ready(url, process)
            await asyncio.sleep(1)
            await conversations(urls, 1, args.seconds, None)  # warm-up: the first synthesis loads Piper
            results = await conversations(urls, args.turns, args.seconds, RedisMeter(redis_url))
        finally:
            for process in processes:
                process.terminate()
                process.wait(60)
            redis_process.terminate()
            redis_process.wait(30)
    report(results, args)


def report(results: dict, args) -> None:
    print(f"# {args.turns} turns, user audio {args.seconds:g} s at 48 kHz; load average {os.getloadavg()}")
    print("kind      turn  memory_ms  redis_ms  round_trips  sweeps  inside_scripts  bytes_in  bytes_out")
    for mem, red in zip(results["memory"], results["redis"]):
        print(
            f"{red['kind']:<9} {red['turn']:>4}  {mem['ms']:9.1f}  {red['ms']:8.1f}  {red['round_trips']:>11}"
            f"  {red['sweeps']:>6}  {red['inner']:>14}  {red['bytes_in']:>8}  {red['bytes_out']:>9}"
        )
    for kind in ("add_turn", "speak"):
        mem = [r["ms"] for r in results["memory"] if r["kind"] == kind]
        red = [r for r in results["redis"] if r["kind"] == kind]
        print(
            f"{kind}: median latency memory {statistics.median(mem):.1f} ms, redis "
            f"{statistics.median([r['ms'] for r in red]):.1f} ms; "
            f"round trips {sorted({r['round_trips'] for r in red})}; "
            f"bytes in {min(r['bytes_in'] for r in red)}..{max(r['bytes_in'] for r in red)}, "
            f"out {min(r['bytes_out'] for r in red)}..{max(r['bytes_out'] for r in red)}"
        )


if __name__ == "__main__":
    asyncio.run(main())
