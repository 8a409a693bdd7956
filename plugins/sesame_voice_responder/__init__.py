"""The built-in responder: any OpenAI-compatible chat-completions endpoint writes the replies.

Ollama, llama.cpp's server, vLLM, LM Studio, ``transformers serve`` or OpenAI itself:
``RESPONDER_URL`` (base URL, e.g. ``http://127.0.0.1:11434/v1``), ``RESPONDER_MODEL`` and optional
``RESPONDER_API_KEY``, or the ``plugins: responder:`` table of the config file. Replies stream
(``stream: true``); time and length are bounded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

from sesame_voice import Responder, ResponderFailed, ResponderTimeout, ResponderUnavailable, deadline, hookimpl

PLUGIN = "responder"
ENV_NAMES = {
    "url": "RESPONDER_URL",
    "model": "RESPONDER_MODEL",
    "api_key": "RESPONDER_API_KEY",
    "connect_timeout": "RESPONDER_CONNECT_TIMEOUT",
    "first_token_timeout": "RESPONDER_FIRST_TOKEN_TIMEOUT",
    "total_timeout": "RESPONDER_TIMEOUT",
    "max_tokens": "RESPONDER_MAX_TOKENS",
    "max_reply_chars": "RESPONDER_MAX_REPLY_CHARS",
    "temperature": "RESPONDER_TEMPERATURE",
}
MAX_LINE_BYTES = 1 << 20
"""Longest server-sent-events line accepted from the endpoint."""


@dataclass
class ResponderOptions:
    """Settings of the chat-completions responder (``plugins: responder:`` or the RESPONDER_* variables)."""

    url: str = ""
    model: str = ""
    api_key: str = ""
    connect_timeout: float = 5.0
    """Seconds to open the connection."""
    first_token_timeout: float = 20.0
    """Seconds from the request to the first reply token (a model loading counts)."""
    total_timeout: float = 60.0
    """Seconds for the whole reply."""
    max_tokens: int = 200
    """``max_tokens`` sent with each request."""
    max_reply_chars: int = 2000
    """Replies are cut after this many characters (the request is stopped)."""
    temperature: float = -1.0
    """Sampling temperature sent with each request; negative: the endpoint's default."""


class ChatCompletionsResponder(Responder):
    """Streams replies from ``POST {RESPONDER_URL}/chat/completions``."""

    name = "chat-completions"
    description = "any OpenAI-compatible chat-completions endpoint (Ollama, llama.cpp, vLLM, LM Studio, OpenAI)"
    env_names = tuple(ENV_NAMES.values())

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.options = settings.plugin_settings(PLUGIN, ResponderOptions, ENV_NAMES)
        self._session = None
        self.last_error: str | None = None

    @property
    def configured(self) -> bool:
        return bool(self.options.url and self.options.model)

    def status(self) -> dict:
        info = {**super().status(), "model": self.options.model, "url": self.options.url}
        if self.last_error:
            info["last_error"] = self.last_error
        return info

    def _client(self):
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def stream(
        self, messages: Sequence[Mapping[str, str]], *, max_chars: int | None = None
    ) -> AsyncIterator[str]:
        if not self.configured:
            raise ResponderUnavailable("the responder needs RESPONDER_URL and RESPONDER_MODEL")
        options = self.options
        limit = min(max_chars or options.max_reply_chars, options.max_reply_chars)
        body = {
            "model": options.model,
            "messages": [dict(m) for m in messages],
            "stream": True,
            "max_tokens": options.max_tokens,
        }
        if options.temperature >= 0:
            body["temperature"] = options.temperature
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if options.api_key:
            headers["Authorization"] = f"Bearer {options.api_key}"
        url = options.url.rstrip("/") + "/chat/completions"
        loop = asyncio.get_running_loop()
        ends = loop.time() + options.total_timeout
        written = 0
        try:
            async with deadline(min(options.connect_timeout + options.first_token_timeout, options.total_timeout)):
                response = await self._client().post(url, json=body, headers=headers, timeout=_no_timeout())
        except asyncio.TimeoutError:
            raise self._fail(
                ResponderTimeout(
                    f"the responder at {options.url} did not answer within {options.first_token_timeout:g} s"
                )
            ) from None
        except OSError as err:
            raise self._fail(ResponderUnavailable(f"cannot reach the responder at {options.url}: {err}")) from None
        except Exception as err:  # noqa: BLE001 - aiohttp's client errors, invalid URLs
            raise self._fail(ResponderUnavailable(f"cannot reach the responder at {options.url}: {err}")) from None
        async with response:
            if response.status >= 400:
                text = (await response.content.read(4096)).decode("utf-8", "replace")
                raise self._fail(ResponderFailed(f"the responder answered {response.status}: {_message(text)}"))
            first = True
            while written < limit:
                wait = ends - loop.time()
                if first:
                    wait = min(wait, options.first_token_timeout)
                if wait <= 0:
                    raise self._fail(ResponderTimeout(f"the reply took longer than {options.total_timeout:g} s"))
                try:
                    async with deadline(wait):  # not wait_for: it can swallow this reply's cancellation
                        line = await response.content.readline()
                except asyncio.TimeoutError:
                    what = "first token" if first else "reply"
                    raise self._fail(
                        ResponderTimeout(f"the responder's {what} took longer than {wait:.1f} s")
                    ) from None
                except ValueError:  # a line over aiohttp's limit
                    raise self._fail(ResponderFailed("the responder sent an over-long line")) from None
                except Exception as err:  # noqa: BLE001 - the connection broke mid-reply
                    raise self._fail(ResponderFailed(f"the responder's stream broke: {err}")) from None
                if not line:
                    break
                if len(line) > MAX_LINE_BYTES:
                    raise self._fail(ResponderFailed("the responder sent an over-long line"))
                piece, done = _delta(line)
                if done:
                    break
                if piece:
                    first = False
                    piece = piece[: limit - written]
                    written += len(piece)
                    yield piece
        self.last_error = None

    def _fail(self, err: Exception) -> Exception:
        self.last_error = str(err)
        return err


def _no_timeout():
    import aiohttp

    return aiohttp.ClientTimeout(total=None, sock_connect=None)


def _message(text: str) -> str:
    """The ``error.message`` of an OpenAI-shaped error body, else the text (short)."""
    try:
        data = json.loads(text)
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
        if isinstance(error, str):
            return error[:300]
        if isinstance(data, dict) and data.get("detail"):
            return str(data["detail"])[:300]
    except ValueError:
        pass
    return text.strip()[:300] or "no details"


def _delta(line: bytes) -> tuple[str, bool]:
    """The text of one SSE line of a streamed chat completion, and whether the stream ended."""
    text = line.decode("utf-8", "replace").strip()
    if not text.startswith("data:"):
        return "", False
    data = text[5:].strip()
    if data == "[DONE]":
        return "", True
    try:
        chunk = json.loads(data)
    except ValueError:
        raise ResponderFailed("the responder sent a chunk that is not JSON") from None
    if not isinstance(chunk, dict):
        raise ResponderFailed("the responder sent a chunk that is not a chat completion")
    if chunk.get("error"):
        raise ResponderFailed(f"the responder failed: {_message(json.dumps(chunk))}")
    choices = chunk.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return "", False
    delta = choices[0].get("delta") or {}
    content = delta.get("content") if isinstance(delta, dict) else None
    return (content if isinstance(content, str) else ""), False


@hookimpl
def register_responders(register) -> None:
    register(ChatCompletionsResponder)
