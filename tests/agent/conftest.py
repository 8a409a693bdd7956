"""Agent fixtures: a real OpenAI-compatible LLM server (``transformers serve`` with a tiny random chat
model written by the test), a sesame-voice server using it as its responder, Piper speech at 24 kHz."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from reply_length import REPLY_TOKENS


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory):
    """``(base_url, model)`` of ``transformers serve`` running the tiny chat model on 127.0.0.1."""
    pytest.importorskip("torch")
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    from sesame_voice_responder.tiny_llm import serve_tiny_chat_model, write_tiny_chat_model

    folder = write_tiny_chat_model(tmp_path_factory.mktemp("tiny-chat") / "model")
    log = tmp_path_factory.mktemp("tiny-chat-log") / "serve.log"
    with serve_tiny_chat_model(folder, log=log) as url:
        yield url, str(folder)


@pytest.fixture
def responder_env(tiny_llm) -> dict[str, str]:
    """The environment that points the built-in responder at the tiny LLM (greedy, short replies)."""
    url, model = tiny_llm
    return {
        "RESPONDER_URL": url,
        "RESPONDER_MODEL": model,
        "RESPONDER_TEMPERATURE": "0",
        "RESPONDER_MAX_TOKENS": str(REPLY_TOKENS),
    }


@pytest.fixture
def make_settings(make_settings):
    """Whisper on (the server hears the user), CSM off, the bundled Piper voice by default."""

    def make(**overrides):
        return make_settings(**{"disabled_plugins": ("csm",), "default_voice": "joe", **overrides})

    return make


@pytest.fixture
def start_agent(start_server, responder_env):
    """``async with start_agent(**settings) as server``: a server whose responder is the tiny LLM."""

    @contextlib.asynccontextmanager
    async def start(env: dict | None = None, **overrides):
        async with start_server(env={**responder_env, **(env or {})}, **overrides) as server:
            yield server

    return start


@pytest.fixture
def speech_24k():
    """``await speech_24k(server, text)``: the bundled Piper voice saying ``text``, float32 at 24 kHz."""
    import soundfile
    import soxr

    async def run(server, text: str) -> np.ndarray:
        from openai import AsyncOpenAI

        client = AsyncOpenAI(base_url=f"http://127.0.0.1:{server.http_port}/v1", api_key="sk-test", max_retries=0)
        response = await client.audio.speech.with_raw_response.create(
            model="tts-1", voice="joe", input=text, response_format="wav"
        )
        samples, rate = soundfile.read(io.BytesIO(response.content), dtype="float32")
        return soxr.resample(samples, rate, 24000).astype(np.float32)

    return run


@pytest.fixture
def realtime_client():
    """``realtime_client(server)``: the async ``openai`` SDK whose ``realtime.connect()`` reaches ``server``."""
    from openai import AsyncOpenAI

    def make(server, api_key: str = "sk-test-anything") -> AsyncOpenAI:
        return AsyncOpenAI(base_url=f"http://127.0.0.1:{server.http_port}/v1", api_key=api_key, max_retries=0)

    return make


@pytest.fixture
def free_port() -> int:
    """A loopback port nothing listens on (a responder that is down)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
