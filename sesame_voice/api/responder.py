"""Responders: the provider kind that writes replies (a language model) for conversations that answer back.

A responder gets the conversation as OpenAI-style chat messages (``{"role": "system" | "user" |
"assistant", "content": str}``) and streams the reply text. It does network or model I/O of its
own, so unlike voice providers it is asynchronous and runs on the event loop (it must not block it).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from sesame_voice.api.errors import SesameVoiceError

if TYPE_CHECKING:  # pragma: no cover
    from sesame_voice.config import Settings

ROLES = ("system", "user", "assistant")
SYSTEM_PROMPT_PARAM = "system_prompt"
"""The voice parameter (in a persona's YAML ``params``) that holds its system prompt."""


class ResponderUnavailable(SesameVoiceError):
    """No responder is configured, or the one configured cannot be reached."""

    code = "responder_unavailable"


class ResponderTimeout(SesameVoiceError):
    """The responder did not answer (or stopped answering) within its time limit."""

    code = "responder_timeout"


class ResponderFailed(SesameVoiceError):
    """The responder answered with an error or with something that is not a chat completion."""

    code = "responder_error"


@dataclass
class ReplyTiming:
    """When a reply's first token arrived, relative to when it was asked for (monotonic seconds)."""

    started: float = field(default_factory=time.monotonic)
    first_token: float | None = None

    @property
    def first_token_seconds(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.started


class Responder:
    """Writes replies. Subclasses set ``name`` and implement ``stream``; ``configured`` says whether
    it can be used (e.g. an endpoint is set); ``status()`` is shown in ``/health`` under ``responders``.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    env_names: ClassVar[tuple[str, ...]] = ()
    """Environment variables the responder reads its settings from (``service install`` passes them on)."""

    def __init__(self, settings: "Settings") -> None:
        self.settings = settings

    @property
    def configured(self) -> bool:
        """True when the responder has what it needs to answer (an endpoint, a model...)."""
        return True

    def stream(self, messages: Sequence[Mapping[str, str]], *, max_chars: int | None = None) -> AsyncIterator[str]:
        """Yield the reply to ``messages`` in pieces as they are written, at most ``max_chars`` in all.

        Raise ``ResponderUnavailable`` (cannot reach it), ``ResponderTimeout`` (too slow) or
        ``ResponderFailed`` (it answered with an error).
        """
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release connections; called once when the server stops."""

    def status(self) -> dict:
        return {"configured": self.configured}


def chat_messages(turns: Sequence[tuple[str, str]], system_prompt: str | None = None) -> list[dict]:
    """OpenAI-style messages from ``(role, text)`` turns, led by the system prompt if any."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    for role, text in turns:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        if text:
            messages.append({"role": role, "content": text})
    return messages


def voice_system_prompt(voice) -> str | None:
    """The persona's system prompt: the voice parameter ``system_prompt``, if the voice has one."""
    prompt = (getattr(voice, "params", None) or {}).get(SYSTEM_PROMPT_PARAM)
    return str(prompt).strip() or None if prompt else None


def pick_responder(responders: Mapping[str, Responder], name: str | None = None) -> Responder:
    """The responder called ``name``, else the first configured one; ``ResponderUnavailable`` if none."""
    if name:
        if name not in responders:
            raise ResponderUnavailable(f"no responder called {name!r} (installed: {', '.join(responders) or 'none'})")
        return responders[name]
    for responder in responders.values():
        if responder.configured:
            return responder
    raise ResponderUnavailable(
        "no responder is configured: set RESPONDER_URL (a chat-completions endpoint such as "
        "http://127.0.0.1:11434/v1) and RESPONDER_MODEL (docs/agent.md)"
    )
