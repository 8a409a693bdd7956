"""The agent loop of a session: the responder writes the reply to the history, the session's voice
speaks it sentence by sentence as it is written, paced to real time so that barge-in knows what
was heard; the reply joins the history (marked ``interrupted`` when cut short)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from sesame_voice import ContextSegment, SesameVoiceError, SynthesisRequest
from sesame_voice.api.responder import chat_messages, pick_responder, voice_system_prompt
from sesame_voice.api.text import SentenceStream, split_first_clause
from sesame_voice.audio import FRAME_RATE, Framer

from .models import Turn, UnknownSession, new_id
from .service import compact_audio

FRAME_SECONDS = 0.08
MAX_HISTORY_TURNS = 40
"""The newest turns sent to the responder."""
AUDIO_LEAD_SECONDS = 0.3
"""Reply audio is sent at most this far ahead of real time (a client's jitter buffer)."""
MAX_QUEUED_FRAMES = 125
"""Frames generated ahead of sending (10 s); the voice waits when the queue is full."""


@dataclass
class Latency:
    """Seconds from the end of the user's turn to its transcript, the first reply token, the first audio."""

    start: float = field(default_factory=time.monotonic)
    transcript: float | None = None
    first_token: float | None = None
    first_audio: float | None = None

    def mark(self, stage: str) -> None:
        if getattr(self, stage) is None:
            setattr(self, stage, round(time.monotonic() - self.start, 4))

    def wire(self) -> dict:
        return {"transcript_s": self.transcript, "first_token_s": self.first_token, "first_audio_s": self.first_audio}


def history_messages(turns, system_prompt: str | None) -> list[dict]:
    """The session's turns as chat messages: turns the server spoke are the assistant's."""
    recent = list(turns)[-MAX_HISTORY_TURNS:]
    return chat_messages([("assistant" if t.generated else "user", t.text) for t in recent], system_prompt)


class AgentReply:
    """One reply of ``sessions`` in ``session_id``; ``run()`` it in a task, cancel the task to interrupt.

    ``send(message)`` sends a JSON message, ``send_audio(bytes)`` one binary 80 ms frame."""

    def __init__(
        self,
        sessions,
        session_id: str,
        send: Callable[[dict], Awaitable[None]],
        send_audio: Callable[[bytes], Awaitable[None]],
        latency: Latency,
        frontend: str = "sessions",
        request_id=None,
    ) -> None:
        self.sessions = sessions
        self.session_id = session_id
        self.send = send
        self.send_audio = send_audio
        self.latency = latency
        self.frontend = frontend
        self.request_id = request_id
        self.id = new_id()
        self.written = ""
        self.sentences: list[str] = []
        self.heard_sentences = 0
        """Sentences whose audio has begun to be sent."""
        self.audio: list[np.ndarray] = []
        self.status = "in_progress"
        self.turn: Turn | None = None

    async def run(self) -> None:
        """Write and speak the reply; errors become ``error`` messages, the end a ``reply_done``."""
        error = None
        try:
            responder = pick_responder(self.sessions.responders)
            async with self.sessions.store.speaking(self.session_id) as session:
                try:
                    await self._reply(session, responder)
                    self.status = "completed"
                finally:
                    if self.status != "completed":
                        self.status = "interrupted"
                    await self._keep(session)
        except asyncio.CancelledError:
            self.status = "interrupted"
            await self._done()
            raise
        except SesameVoiceError as err:
            self.status, error = "failed", err
        except Exception as err:  # noqa: BLE001 - reported to the client; the session stays usable
            self.status, error = "failed", err
        if error is not None:
            code = getattr(error, "code", "internal_error")
            await self.send(
                {
                    "type": "error",
                    "code": code,
                    "message": str(error),
                    "reply_id": self.id,
                    "request_id": self.request_id,
                }
            )
        await self._done()

    async def _reply(self, session, responder) -> None:
        voice = self.sessions.voices.get(session.voice) if self.sessions.voices is not None else None
        messages = history_messages(session.turns, voice_system_prompt(voice))
        await self.send({"type": "reply_started", "reply_id": self.id, "request_id": self.request_id})
        sentences: asyncio.Queue = asyncio.Queue()  # bounded by the responder's reply limit (max_reply_chars)
        frames: asyncio.Queue = asyncio.Queue(MAX_QUEUED_FRAMES)
        voice_name = voice.name if voice is not None else session.voice
        speaking = asyncio.create_task(self._voice(session, voice_name, sentences, frames))
        sending = asyncio.create_task(self._play(frames))
        splitter = SentenceStream()
        try:
            async for piece in responder.stream(messages):
                if speaking.done() or sending.done():  # the voice or the socket failed: stop writing
                    break
                self.latency.mark("first_token")
                self.written += piece
                await self.send({"type": "reply_delta", "reply_id": self.id, "delta": piece})
                for sentence in splitter.add(piece):
                    await self._queue_sentence(sentences, sentence)
            for sentence in splitter.finish():
                await self._queue_sentence(sentences, sentence)
            if not speaking.done():
                await sentences.put(None)
            await asyncio.wait([speaking, sending], return_when=asyncio.FIRST_EXCEPTION)
            for task in (speaking, sending):
                if task.done():
                    task.result()
            await sending
        finally:
            for task in (speaking, sending):
                task.cancel()
            await asyncio.gather(speaking, sending, return_exceptions=True)

    async def _queue_sentence(self, queue: asyncio.Queue, sentence: str) -> None:
        for part in split_first_clause(sentence) if not self.sentences else [sentence]:
            self.sentences.append(part)
            await queue.put(part)

    async def _voice(self, session, voice: str | None, sentences: asyncio.Queue, frames: asyncio.Queue) -> None:
        """Speak each sentence as it comes, conditioned on the history and the reply so far."""
        context = session.context()
        index = 0
        while (sentence := await sentences.get()) is not None:
            request = SynthesisRequest(
                text=sentence,
                voice=voice,
                context=context,
                sampling={"speaker": session.speaker},
                frontend=self.frontend,
            )
            spoken = []
            async with self.sessions.engine.synthesis(request) as synthesis:
                framer = Framer(synthesis.sample_rate)
                first = True
                async for chunk in synthesis:
                    for frame in framer.push(chunk.samples):
                        await frames.put((index, frame, synthesis if first else None))
                        first = False
                        spoken.append(frame)
                for frame in framer.flush():
                    await frames.put((index, frame, synthesis if first else None))
                    first = False
                    spoken.append(frame)
            if spoken:
                audio = np.concatenate(spoken)
                context = [*context, ContextSegment(sentence, session.speaker, audio, FRAME_RATE)]
            index += 1
        await frames.put(None)

    async def _play(self, frames: asyncio.Queue) -> None:
        """Send the frames no further than ``AUDIO_LEAD_SECONDS`` ahead of real time."""
        started = None
        played_until = 0.0
        """When the client will have played everything sent so far (monotonic seconds)."""
        while (item := await frames.get()) is not None:
            index, frame, synthesis = item
            if started is None:
                await self.send(
                    {
                        "type": "audio_start",
                        "reply_id": self.id,
                        "voice": synthesis.voice.name if synthesis is not None else None,
                        "provider": synthesis.provider if synthesis is not None else None,
                        "transport": "binary",
                        "encoding": "f32le",
                        "sample_rate": FRAME_RATE,
                        "frame_samples": frame.size,
                        "frame_ms": 80,
                        "request_id": self.request_id,
                    }
                )
                started = time.monotonic()
            ahead = played_until - time.monotonic()
            if ahead > AUDIO_LEAD_SECONDS:
                await asyncio.sleep(ahead - AUDIO_LEAD_SECONDS)
            played_until = max(played_until, time.monotonic()) + FRAME_SECONDS
            self.heard_sentences = max(self.heard_sentences, index + 1)
            self.audio.append(frame)
            await self.send_audio(frame.astype("<f4").tobytes())
            self.latency.mark("first_audio")

    async def _keep(self, session) -> None:
        """The reply joins the history: all of it, or what was sent before the interruption."""
        text = " ".join(self.sentences[: self.heard_sentences] if self.status != "completed" else self.sentences)
        if not text.strip():
            return
        audio = np.concatenate(self.audio) if self.audio else None
        if audio is not None and audio.size / FRAME_RATE > self.sessions.limits.max_audio_seconds:
            audio = None
        rate = None
        if audio is not None:  # kept as the stores keep audio: int16 at the session's provider rate
            rate = self.sessions.audio_rate(session.voice)
            audio = await asyncio.to_thread(compact_audio, audio, FRAME_RATE, rate)
        turn = Turn(
            text=text.strip(),
            speaker=session.speaker,
            audio=audio,
            sample_rate=rate,
            generated=True,
            interrupted=self.status != "completed",
        )
        with contextlib.suppress(UnknownSession, SesameVoiceError):
            self.turn = await self.sessions.store.add_turn(session.id, turn)

    async def _done(self) -> None:
        metric = getattr(self.sessions, "stage_metric", None)
        if metric is not None and self.status != "failed":
            for stage, seconds in self.latency.wire().items():
                if seconds is not None:
                    metric.labels(stage=stage.removesuffix("_s")).observe(seconds)
        await self.send(
            {
                "type": "reply_done",
                "reply_id": self.id,
                "status": self.status,
                "turn": self.turn.describe() if self.turn is not None else None,
                "written": self.written,
                "frames": len(self.audio),
                "duration_ms": len(self.audio) * 80,
                "latency": self.latency.wire(),
                "request_id": self.request_id,
            }
        )
