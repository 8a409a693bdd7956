"""The ``sessions`` service other plugins find with ``server.service("sessions")`` (docs/plugins.md).

It speaks in sessions (the history becomes each request's ``context``), transcribes audio-only
turns, and keeps the store's data behind the :class:`~.store.SessionStore` interface.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from sesame_voice import InvalidRequest, SynthesisRequest
from sesame_voice.audio import FRAME_RATE, resample
from sesame_voice.http.context import transcribe_audio

from .models import Session, Turn, UnknownSession, check_session_id, new_id
from .store import SessionStore


def compact_audio(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``samples`` at ``target`` Hz as int16 PCM, the form sessions keep audio in (blocking: run in a thread)."""
    samples = np.asarray(samples, dtype=np.float32)
    if rate != target:
        samples = resample(samples, rate, target)
    return np.clip(np.rint(samples * 32767.0), -32768, 32767).astype(np.int16)


class SpokenTurn:
    """A session speaking: iterate it for the audio; once fully iterated, ``turn`` joins the history.

    It answers like the engine's synthesis (``provider``, ``voice``, ``sample_rate``,
    ``fell_back_from``), so it can stand in for one (e.g. in ``speech_response``)."""

    def __init__(self, turn_id: str, synthesis, max_seconds: float, on_finished=None) -> None:
        self.id = turn_id
        self.on_finished = on_finished
        """``await on_finished(self)`` after the last chunk, before the iteration ends: the turn is
        stored before a consumer can send the end of its answer."""
        self.synthesis = synthesis
        self.turn: Turn | None = None
        """The turn that joined the history (None until the audio was iterated to its end)."""
        self.finished = False
        self._chunks: list[np.ndarray] = []
        self._seconds = 0.0
        self._max_seconds = max_seconds

    @property
    def sample_rate(self) -> int:
        """Rate of the audio being generated."""
        return self.synthesis.sample_rate

    @property
    def voice(self):
        """The Voice speaking."""
        return self.synthesis.voice

    @property
    def provider(self) -> str:
        """Name of the provider serving."""
        return self.synthesis.provider

    @property
    def fell_back_from(self) -> list[str]:
        """Providers skipped before the one serving."""
        return self.synthesis.fell_back_from

    def __aiter__(self) -> AsyncIterator:
        return self._iterate()

    async def _iterate(self):
        async for chunk in self.synthesis:
            self._seconds += chunk.duration
            if self._seconds <= self._max_seconds:
                self._chunks.append(chunk.samples)
            yield chunk
        self.finished = True
        if self.on_finished is not None:
            await self.on_finished(self)

    def audio(self) -> np.ndarray | None:
        """Everything generated, or None if it was longer than a session may keep."""
        if self._seconds > self._max_seconds or not self._chunks:
            return None
        return np.concatenate(self._chunks).astype(np.float32, copy=False)


class SessionService:
    """Conversation sessions of one server: ``create``, ``get``, ``list``, ``delete``, ``add_turn``,
    ``speak``; ``websocket`` runs the conversation protocol on a request. Errors: ``UnknownSession``
    (404), ``SessionBusy`` / ``SessionLimitReached`` (409), ``InvalidRequest`` (400)."""

    def __init__(
        self,
        store: SessionStore,
        engine,
        speech_to_text=None,
        voices=None,
        max_upload_seconds: float = 60.0,
        default_voice: str | None = None,
        audio_rate: Callable[[str | None], int] | None = None,
        keep_implicit: bool = False,
        responders=None,
    ) -> None:
        self.store = store
        self.engine = engine
        self.speech_to_text = speech_to_text
        """Transcribes audio-only turns (``transcribe(samples, sample_rate)``), or None."""
        self.voices = voices
        self.max_upload_seconds = max_upload_seconds
        """Longest audio one uploaded turn may have (``plugins.sessions.max_upload_seconds``)."""
        self.default_voice = default_voice
        """Voice of sessions created over REST without one (None: the server's default voice)."""
        self.audio_rate = audio_rate or (lambda voice: FRAME_RATE)
        """Rate uploaded turn audio is kept at for a session's voice (the serving provider's context rate)."""
        self.keep_implicit = keep_implicit
        """Keep sessions a WebSocket created after it closes (``plugins.sessions.ws_keep``)."""
        self.responders = responders if responders is not None else {}
        """Reply writers by name (``server.responders``); with a configured one, WebSocket turns get replies."""
        self.stage_metric = None
        """Histogram of the agent loop's stage latencies (``stage`` label), or None."""

    @property
    def answers(self) -> bool:
        """True when a responder is configured: the WebSocket answers user turns (docs/sessions.md)."""
        return any(responder.configured for responder in self.responders.values())

    @property
    def limits(self):
        """The store's bounds (``SessionLimits``)."""
        return self.store.limits

    def check_voice(self, voice: str | None) -> None:
        """UnknownVoice now rather than at the first speech."""
        if voice is not None and self.voices is not None:
            self.voices.get(voice)

    async def create(self, voice: str | None = None, speaker: int = 0, session_id: str | None = None) -> Session:
        """A new, empty session; SessionLimitReached when ``max_sessions`` are open."""
        check_session_id(session_id)
        self.check_voice(voice)
        return await self.store.create(voice=voice, speaker=speaker, session_id=session_id)

    async def get(self, session_id: str, audio: bool = True) -> Session:
        """The session with its turns (``audio=False``: maybe without their samples, to describe it);
        UnknownSession if it does not exist or expired."""
        return await self.store.get(session_id, audio=audio)

    async def list(self) -> list[Session]:
        """Open sessions, oldest first."""
        return await self.store.list()

    async def delete(self, session_id: str) -> None:
        """Forget a session; UnknownSession if there is none."""
        await self.store.delete(session_id)

    async def add_turn(
        self,
        session_id: str,
        text: str | None = None,
        speaker: int = 0,
        audio: np.ndarray | None = None,
        sample_rate: int | None = None,
    ) -> Turn:
        """Append a turn; audio without text is transcribed by the server's speech-to-text service.

        The audio is kept as 16-bit PCM at the rate of the provider serving the session's voice (never
        above the client's), so a session's memory does not depend on the rate a client sends."""
        session = await self.store.get(session_id, audio=False)
        transcribed = False
        if text is not None and not isinstance(text, str):
            raise InvalidRequest("text must be a string", param="text")
        if not (text or "").strip():
            if audio is None or not len(audio):
                raise InvalidRequest("a turn needs text, audio, or both", param="text", code="empty_turn")
            text = await transcribe_audio(self.speech_to_text, audio, int(sample_rate or 0))
            transcribed = True
        if audio is not None:
            target = min(int(sample_rate or FRAME_RATE), self.audio_rate(session.voice))
            audio = await asyncio.to_thread(compact_audio, audio, int(sample_rate or target), target)
            sample_rate = target
        turn = Turn(
            text=text.strip(),
            speaker=speaker,
            audio=audio,
            sample_rate=sample_rate if audio is not None else None,
            transcribed=transcribed,
        )
        return await self.store.add_turn(session_id, turn)

    @contextlib.asynccontextmanager
    async def speak(
        self,
        session_id: str,
        text: str,
        speaker: int | None = None,
        voice: str | None = None,
        frontend: str = "",
        sampling: dict | None = None,
        **request_fields: Any,
    ):
        """``async with sessions.speak(id, text) as spoken: async for chunk in spoken: ...``

        Generates ``text`` as ``speaker`` conditioned on the history; when the audio has been
        iterated to the end, the turn (text + audio) joins the history as ``spoken.turn`` (stored
        before the iteration ends, so an answer's end means the turn is kept; a store failure
        there raises from the iteration). One
        speech at a time per session (``SessionBusy``); errors come before any audio.
        """
        async with self.store.speaking(session_id) as session:
            speaker = session.speaker if speaker is None else speaker
            request = SynthesisRequest(
                text=text,
                voice=voice or session.voice,
                context=session.context(),
                sampling={**(sampling or {}), "speaker": speaker},
                frontend=frontend,
                **request_fields,
            )

            async def keep(spoken: SpokenTurn) -> None:
                audio = spoken.audio()
                if audio is not None:
                    audio = await asyncio.to_thread(compact_audio, audio, spoken.sample_rate, spoken.sample_rate)
                turn = Turn(
                    text=request.text,
                    speaker=speaker,
                    audio=audio,
                    sample_rate=spoken.sample_rate if audio is not None else None,
                    id=spoken.id,
                    generated=True,
                )
                with contextlib.suppress(UnknownSession):  # deleted while it spoke: nothing to join
                    spoken.turn = await self.store.add_turn(session.id, turn)

            async with self.engine.synthesis(request) as synthesis:
                yield SpokenTurn(new_id(), synthesis, self.limits.max_audio_seconds, keep)

    async def websocket(
        self, request, session_id: str | None = None, voice: str | None = None, frontend: str = "sessions"
    ):
        """Run the conversation protocol (docs/sessions.md) on ``request``, an aiohttp WebSocket request.

        Joins ``session_id`` or creates a session speaking ``voice``. Before the upgrade it raises
        (an unknown session, the limit, ``websocket_expected`` for plain HTTP) so the caller answers
        in its own error shape. ``frontend`` names the caller in the engine's requests (metrics, hooks)."""
        from .websocket import serve_conversation

        return await serve_conversation(self, request, session_id, voice, frontend)
