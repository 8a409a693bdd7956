"""Streaming latency and server overhead of POST /v1/audio/speech, as ratios against bare Piper.

Prints, for a five-sentence text on the bundled voice:
  * time-to-first-byte of a streamed response / time to synthesise the first sentence alone
    (target <= 1.5);
  * end-to-end server time for the whole text / bare provider synthesis of the same text
    (target <= 1.10).
Both sides are measured in the same run, interleaved; medians of --rounds. The server runs as a
real `sesame-voice serve` subprocess on 127.0.0.1.

    python benchmarks/openai_stream.py [--rounds 7] [--format mp3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sesame_voice import ProviderJob, SynthesisRequest
from sesame_voice.api.text import split_sentences
from sesame_voice.app.plugins import collect_providers, make_plugin_manager
from sesame_voice.config import load_settings

REPO = Path(__file__).resolve().parent.parent
TEXT = (
    "Good evening, and welcome to the late news. "
    "Heavy rain is expected across the north of the country tonight. "
    "Drivers are advised to take extra care on the motorways. "
    "In sport, the home team won their third match in a row. "
    "And finally, a cat has been elected honorary mayor of a small town."
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bare_piper():
    """The Piper provider exactly as the server builds it, loaded, outside any server."""
    settings = load_settings(env={}, dotenv_file=None)
    pm = make_plugin_manager(disabled=("openai", "wyoming", "csm"))  # only the provider is measured here
    provider = collect_providers(pm)["piper"].cls(settings)
    provider.ensure_loaded()
    voice = next(iter(provider.default_voices()))

    def synthesize(text: str) -> tuple[float, float]:
        """(wall seconds, CPU seconds of this process) for one synthesis."""
        job = ProviderJob(split_sentences(text), voice, voice.params, SynthesisRequest(text=text))
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in provider.synthesize(job):
            pass
        return time.perf_counter() - start, time.process_time() - cpu_start

    return synthesize


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(port: int, voices_dir: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "VOICES_DIR": str(voices_dir),
        "LOG_LEVEL": "warning",
        "MODEL_ID": str(voices_dir / "no-csm"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "sesame_voice", "serve", "--disable", "wyoming", "--no-zeroconf"],
        env=env,
        cwd=voices_dir,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not start")


def timed_request(port: int, text: str, fmt: str) -> tuple[float, float, int]:
    """(time to first body byte, time to last byte, bytes) for one streamed request."""
    body = json.dumps({"model": "tts-1", "input": text, "voice": "joe", "response_format": fmt})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    start = time.perf_counter()
    conn.request("POST", "/v1/audio/speech", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 200, response.read()
    first = response.read1(65536)
    ttfb = time.perf_counter() - start
    size = len(first)
    while chunk := response.read1(65536):
        size += len(chunk)
    total = time.perf_counter() - start
    conn.close()
    return ttfb, total, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--format", default="mp3")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    synthesize = bare_piper()
    first_sentence = split_sentences(TEXT)[0]
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        voices_dir = Path(tmp) / "voices"
        voices_dir.mkdir()
        server = start_server(port, voices_dir)
        try:
            for _ in range(2):  # warm both sides: model load, ONNX graph optimisation, codecs
                synthesize(TEXT)
                timed_request(port, TEXT, args.format)
            first_alone, whole_bare, bare_cpu, ttfbs, totals, server_cpu = [], [], [], [], [], []
            for _ in range(args.rounds):
                first_alone.append(synthesize(first_sentence)[0])
                wall, cpu = synthesize(TEXT)
                whole_bare.append(wall)
                bare_cpu.append(cpu)
                cpu_start = process_cpu_seconds(server.pid)
                ttfb, total, _ = timed_request(port, TEXT, args.format)
                server_cpu.append(process_cpu_seconds(server.pid) - cpu_start)
                ttfbs.append(ttfb)
                totals.append(total)
        finally:
            server.terminate()
            server.wait(10)

    med = statistics.median
    ttfb_ratio = med(ttfbs) / med(first_alone)
    total_ratio = med(totals) / med(whole_bare)
    print(
        f"format {args.format}, {args.rounds} rounds, five sentences ({len(TEXT)} chars); "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after on {os.cpu_count()} CPUs"
    )
    print(f"bare Piper, first sentence alone : {med(first_alone) * 1000:7.1f} ms")
    print(f"server streaming first byte      : {med(ttfbs) * 1000:7.1f} ms")
    print(f"TTFB ratio                       : {ttfb_ratio:7.2f}  (target <= 1.5)")
    print(f"bare Piper, whole text           : {med(whole_bare) * 1000:7.1f} ms")
    print(f"server end to end, whole text    : {med(totals) * 1000:7.1f} ms")
    print(f"end-to-end ratio                 : {total_ratio:7.2f}  (target <= 1.10)")
    # CPU time is far less distorted than wall time when other work loads the machine.
    print(
        f"CPU, bare Piper / server request : {med(bare_cpu) * 1000:7.1f} / {med(server_cpu) * 1000:.1f} ms "
        f"(ratio {med(server_cpu) / med(bare_cpu):.2f})"
    )


if __name__ == "__main__":
    main()
