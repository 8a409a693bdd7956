"""The session WebSocket listening and answering: microphone audio in (``audio_in``, binary
messages, ``commit_audio``), end of turn by the server's VAD, transcripts, and with a responder
configured a spoken reply to every user turn, cut short when the user speaks over it (barge-in)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from sesame_voice import InvalidRequest, SesameVoiceError

from .agent import AgentReply, Latency
from .microphone import Microphone, parse_audio_in

if TYPE_CHECKING:  # pragma: no cover
    from .websocket import Conversation

MAX_PENDING_TURNS = 4
"""User turns waiting for their transcript; more are refused (``turn_backlog``)."""
USER_SPEAKER, OTHER_USER_SPEAKER = 1, 0
"""The user's speaker id: 1, or 0 when the session's voice speaks as 1."""


class Listening:
    """Microphone, transcription and replies of one ``Conversation``."""

    clock = staticmethod(time.monotonic)

    def __init__(self, conversation: "Conversation") -> None:
        self.conversation = conversation
        self.sessions = conversation.sessions
        self.microphone: Microphone | None = None
        self.reply: AgentReply | None = None
        self.reply_task: asyncio.Task | None = None
        self._turns: set[asyncio.Task] = set()
        self._order = asyncio.Lock()
        self._starting = asyncio.Lock()
        """Held from interrupting the running reply to registering the next: two turns answered at
        once would otherwise both start a reply while the old one stops, and the first would play on,
        out of reach of ``cancel`` and barge-in."""
        self.handlers = {"audio_in": self.on_audio_in, "commit_audio": self.on_commit_audio, "reply": self.on_reply}

    # -- microphone ---------------------------------------------------------------------------------
    async def on_audio_in(self, message: dict, request_id: Any) -> None:
        """Declare the format of the binary messages to come (and the turn detection)."""
        audio_in = parse_audio_in(message)
        self.microphone = Microphone(audio_in, self.sessions.max_upload_seconds)
        await self.conversation.send({"type": "audio_in", **audio_in.wire(), "request_id": request_id})

    async def on_audio(self, data: bytes) -> None:
        """One binary message of microphone audio."""
        if self.microphone is None:
            await self.conversation.error(
                "audio_format_required",
                "declare the microphone audio first: {type: audio_in, encoding: s16le|f32le, sample_rate}",
            )
            return
        try:
            events = self.microphone.feed(data)
        except InvalidRequest as err:
            await self.conversation.error(err.code, str(err))
            return
        for event in events:
            if event.kind == "speech_started":
                await self.conversation.send({"type": "speech_started", "audio_start_ms": event.ms})
                await self.interrupt()  # barge-in
            else:
                ended = self.clock()
                await self.conversation.send({"type": "speech_stopped", "audio_end_ms": event.ms})
                await self._user_turn(event.audio, ended)

    async def on_commit_audio(self, message: dict, request_id: Any) -> None:
        """End the turn now: the audio buffered since the last turn becomes one."""
        if self.microphone is None:
            raise InvalidRequest("no microphone audio was declared (audio_in)", code="audio_format_required")
        audio = self.microphone.commit()
        if audio.size < self.microphone.rate // 10:
            raise InvalidRequest("less than 100 ms of audio is buffered", code="audio_buffer_empty")
        await self._user_turn(audio, self.clock(), request_id)

    async def _user_turn(self, audio: np.ndarray, ended: float, request_id: Any = None) -> None:
        if len(self._turns) >= MAX_PENDING_TURNS:
            await self.conversation.error("turn_backlog", "too many turns are waiting for their transcript", request_id)
            return
        task = asyncio.create_task(self._transcribe(audio, self.microphone.rate, ended, request_id))
        self._turns.add(task)
        task.add_done_callback(self._turns.discard)

    async def _transcribe(self, audio: np.ndarray, rate: int, ended: float, request_id: Any) -> None:
        """Transcribe a turn (in the order the turns ended), add it, and answer it."""
        latency = Latency(start=ended)
        async with self._order:
            try:
                session = await self.sessions.get(self.conversation.session_id)
                speaker = OTHER_USER_SPEAKER if session.speaker == USER_SPEAKER else USER_SPEAKER
                turn = await self.sessions.add_turn(
                    self.conversation.session_id, speaker=speaker, audio=audio, sample_rate=rate
                )
            except SesameVoiceError as err:
                await self.conversation.error(err.code, str(err), request_id)
                return
            latency.mark("transcript")
            await self.conversation.send(
                {"type": "transcript", "text": turn.text, "turn": turn.describe(), "request_id": request_id}
            )
        if self.sessions.answers and not (self.microphone is not None and self.microphone.in_speech):
            await self.start_reply(latency, request_id)

    # -- replies ------------------------------------------------------------------------------------
    async def turn_added(self, turn, message: dict, started: float, request_id: Any) -> None:
        """A client's ``add_turn``: answered when a responder is configured (unless ``respond: false``)."""
        respond = message.get("respond", True)
        if not isinstance(respond, bool):
            raise InvalidRequest("respond must be a boolean", param="respond")
        if respond and self.sessions.answers:
            latency = Latency(start=started)
            latency.mark("transcript")
            await self.start_reply(latency, request_id)

    async def on_reply(self, message: dict, request_id: Any) -> None:
        """Answer the history as it stands (e.g. after turns added with ``respond: false``)."""
        if not self.sessions.answers:
            raise InvalidRequest(
                "no responder is configured: set RESPONDER_URL and RESPONDER_MODEL (docs/sessions.md)",
                code="responder_unavailable",
            )
        latency = Latency()
        latency.mark("transcript")
        await self.start_reply(latency, request_id)

    async def start_reply(self, latency: Latency, request_id: Any = None) -> None:
        """Answer now; a reply still running is interrupted first."""
        async with self._starting:
            await self.interrupt()
            conversation = self.conversation
            reply = AgentReply(
                self.sessions,
                conversation.session_id,
                conversation.send,
                conversation.send_audio,
                latency,
                conversation.frontend,
                request_id,
            )
            self.reply, self.reply_task = reply, asyncio.create_task(reply.run())

    async def interrupt(self) -> bool:
        """Stop the running reply (what was heard stays in the history, ``interrupted``); False if none ran."""
        task, self.reply_task = self.reply_task, None
        if task is None or task.done():
            return False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return True

    async def close(self) -> None:
        await self.interrupt()
        for task in list(self._turns):
            task.cancel()
        await asyncio.gather(*self._turns, return_exceptions=True)
