"""Requests per second and p95 latency: one replica against two replicas behind HAProxy (Piper voice).

Three cases under the same closed-loop load (--concurrency clients, each sending its next request
when the last one has been read to the end), all in one run, interleaved round by round:
  * one   - one replica, addressed directly;
  * one+lb - the same replica behind HAProxy (deploy/haproxy/haproxy.cfg, both server lines on it):
             the balancer's own cost ("served by" then names HAProxy's two lines, one process);
  * two+lb - two replicas behind HAProxy.
Every replica is a real `sesame-voice serve` process on 127.0.0.1 with the bundled Piper voice.
The load average is printed before and after each case: on a shared machine it says how much of
the CPU the figures really had. Needs haproxy on PATH (Debian: apt-get install haproxy).

    python benchmarks/scale.py [--rounds 2] [--requests 16] [--concurrency 4] [--format wav]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "deploy" / "haproxy" / "haproxy.cfg"
TEXT = "Good evening, and welcome to the late news. Heavy rain is expected across the north tonight."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "n/a"


def start_replica(root: Path, port: int) -> subprocess.Popen:
    root.mkdir(parents=True)
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "CACHE_DIR": str(root),
        "LOG_LEVEL": "warning",
        "VOICES_DIR": str(root / "voices"),
        "DISABLED_PLUGINS": "csm,whisper",
        "WYOMING_ENABLED": "false",
        "ZEROCONF_ENABLED": "false",
        "HF_HUB_OFFLINE": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "sesame_voice", "serve"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_haproxy(haproxy: str, listen: str, first: str, second: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "SESAME_LISTEN": listen,
        "SESAME_REPLICA_1": first,
        "SESAME_REPLICA_2": second,
        "HAPROXY_STATS": f"127.0.0.1:{free_port()}",
    }
    return subprocess.Popen(
        [haproxy, "-db", "-f", str(CONFIG)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def wait_ready(url: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health/ready", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} never became ready")


async def run_load(url: str, requests: int, concurrency: int, fmt: str) -> tuple[float, list[float], dict]:
    """(wall seconds, each request's latency, requests per replica) for ``requests`` requests."""
    body = {"model": "tts-1", "voice": "conversational", "input": TEXT, "response_format": fmt}
    latencies: list[float] = []
    served: dict[str, int] = {}
    queue = list(range(requests))

    async def client(http: aiohttp.ClientSession) -> None:
        while queue:
            queue.pop()
            start = time.perf_counter()
            async with http.post(f"{url}/v1/audio/speech", json=body) as response:
                data = await response.read()
                if response.status != 200 or not data:
                    raise SystemExit(f"request failed: {response.status} {data[:200]!r}")
                replica = response.headers.get("X-Sesame-Replica", "direct")
            latencies.append(time.perf_counter() - start)
            served[replica] = served.get(replica, 0) + 1

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        return time.perf_counter() - start, latencies, served


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--requests", type=int, default=16, help="requests per case per round")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--format", default="wav")
    args = parser.parse_args()
    haproxy = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if haproxy is None:
        raise SystemExit("haproxy is not installed (Debian: apt-get install haproxy)")
    print(f"CPU cores: {os.cpu_count()}; load average at start: {load_average()}")
    processes = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            ports = [free_port(), free_port()]
            replicas = [f"127.0.0.1:{port}" for port in ports]
            for index, port in enumerate(ports):
                processes.append(start_replica(Path(tmp) / f"replica{index}", port))
            one_lb, two_lb = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
            processes.append(start_haproxy(haproxy, one_lb, replicas[0], replicas[0]))
            processes.append(start_haproxy(haproxy, two_lb, replicas[0], replicas[1]))
            for address in (*replicas, one_lb, two_lb):
                wait_ready(f"http://{address}")
            cases = {"one": replicas[0], "one+lb": one_lb, "two+lb": two_lb}
            asyncio.run(run_load(f"http://{replicas[0]}", 2, 2, args.format))  # warm-up, not counted
            asyncio.run(run_load(f"http://{replicas[1]}", 2, 2, args.format))
            results: dict[str, list[tuple[float, list[float]]]] = {name: [] for name in cases}
            for round_ in range(1, args.rounds + 1):
                for name, address in cases.items():
                    before = load_average()
                    wall, latencies, served = asyncio.run(
                        run_load(f"http://{address}", args.requests, args.concurrency, args.format)
                    )
                    results[name].append((wall, latencies))
                    print(
                        f"round {round_} {name:7} {args.requests / wall:6.2f} req/s  p50 "
                        f"{statistics.median(latencies):6.2f} s  p95 {p95(latencies):6.2f} s  served by "
                        f"{dict(sorted(served.items()))}  load {before} -> {load_average()}"
                    )
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(60)
    print(
        f"\nAll rounds ({args.rounds} x {args.requests} requests, concurrency {args.concurrency}, "
        f"{args.format}, text of {len(TEXT)} characters):"
    )
    base = sum(len(lat) for _, lat in results["one"]) / sum(wall for wall, _ in results["one"])
    for name, rows in results.items():
        rate = sum(len(lat) for _, lat in rows) / sum(wall for wall, _ in rows)
        every = [value for _, lat in rows for value in lat]
        print(
            f"  {name:7} {rate:6.2f} req/s ({rate / base:4.2f}x one)  p95 {p95(every):6.2f} s  "
            f"per round: {', '.join(f'{len(lat) / wall:.2f}' for wall, lat in rows)} req/s"
        )
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
