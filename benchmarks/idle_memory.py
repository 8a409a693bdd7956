"""Idle memory of a started server without CSM weights: the optional backends importable or not.

Starts ``sesame-voice serve`` (Piper voices, no CSM weights: MODEL_ID=sesame/csm-1b with an empty,
offline Hugging Face cache) and reads the process's resident memory (VmRSS, Linux) once ``/health``
shows every provider loaded or failed (CSM fails: no weights), then again after ``--settle`` seconds. Cases, in
alternating rounds in one run:

* ``core``: torch, transformers, mlx and mlx-audio cannot be imported (a ``sitecustomize`` blocks
  them), as in an install without the ``csm`` / ``torch`` extras;
* ``extras``: everything installed importable (what this checkout's virtualenv has);
* ``failed-load`` (``--failed-load``): extras importable and weights present but broken, so the
  backend is imported, fails, and drops what it built.

    python benchmarks/idle_memory.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCKER = """
import importlib.abc, sys
BLOCKED = ("torch", "transformers", "mlx", "mlx_audio")
class _Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by benchmarks/idle_memory.py)", name=name)
        return None
sys.meta_path.insert(0, _Blocked())
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def provider_states(port: int) -> dict:
    """Every provider's /health entry (empty while the server is not answering)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            return json.loads(response.read())["providers"]
    except (OSError, ValueError, KeyError):
        return {}


def run_case(case: str, work: Path, settle: float, model_id: str, disable: list[str]) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "CSM_", "MODEL_ID", "CACHE_DIR", "SESAME_"))}
    env.update(
        HF_HOME=str(work / "hf"),
        HF_HUB_OFFLINE="1",
        MODEL_ID=model_id,
        CACHE_DIR=str(work / f"cache-{case}"),
        LOG_LEVEL="info",
    )
    if case == "core":
        blocker = work / "blocker"
        blocker.mkdir(exist_ok=True)
        (blocker / "sitecustomize.py").write_text(BLOCKER)
        env["PYTHONPATH"] = os.pathsep.join([str(blocker), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "sesame_voice.app.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-zeroconf",
        "--voices-dir",
        str(ROOT / "voices"),
    ]
    for name in disable:
        command += ["--disable", name]
    log = open(work / f"{case}.log", "wb")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    try:
        states: dict = {}
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and server.poll() is None:
            states = provider_states(port)
            if "csm" in states and all(s.get("state") in ("ready", "failed") for s in states.values()):
                break
            time.sleep(0.2)
        state = states.get("csm") or {}
        if not states or any(s.get("state") not in ("ready", "failed") for s in states.values()):
            raise RuntimeError(f"{case}: server did not settle: {states}; see {work / (case + '.log')}")
        at_start = rss_mib(server.pid)
        time.sleep(settle)
        settled = rss_mib(server.pid)
        imported = "neither torch nor MLX was imported" in (work / f"{case}.log").read_text(errors="replace")
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
    return {
        "case": case,
        "rss_at_start_mib": round(at_start, 1),
        "rss_settled_mib": round(settled, 1),
        "csm": state.get("state"),
        "backend_skipped_logged": imported,
        "error": (state.get("error") or "")[:90],
    }


def broken_checkpoint(work: Path) -> Path:
    """A transformers-format tiny CSM whose first shard is truncated: found, imported, fails to load."""
    code = (
        "from sesame_voice_csm.torch.testing import write_saved_checkpoint; "
        f"write_saved_checkpoint({str(work / 'broken')!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    shard = work / "broken" / "transformers-00001-of-00002.safetensors"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    return work / "broken"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds between the two RSS readings")
    parser.add_argument("--failed-load", action="store_true", help="also measure a backend that failed to load")
    parser.add_argument("--disable", default="whisper", help="plugins to disable on every side (comma list)")
    args = parser.parse_args()
    disable = [name for name in args.disable.split(",") if name]
    with tempfile.TemporaryDirectory(prefix="idle-memory-") as folder:
        work = Path(folder)
        cases = [("core", "sesame/csm-1b"), ("extras", "sesame/csm-1b")]
        if args.failed_load:
            cases.append(("failed-load", str(broken_checkpoint(work))))
        print(f"python {sys.version.split()[0]}, disabled: {disable or 'none'}, rounds: {args.rounds}", flush=True)
        rows = []
        for number in range(args.rounds):
            for case, model_id in cases if number % 2 == 0 else cases[::-1]:
                row = {"round": number + 1, **run_case(case, work, args.settle, model_id, disable)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\ncase           settled RSS MiB (every round)          median   vs core")
    core = statistics.median(r["rss_settled_mib"] for r in rows if r["case"] == "core")
    for case, _ in cases:
        values = [r["rss_settled_mib"] for r in rows if r["case"] == case]
        median = statistics.median(values)
        print(f"{case:<14} {', '.join(f'{v:.1f}' for v in values):<38} {median:7.1f}   {median / core:.3f}x")


if __name__ == "__main__":
    main()
