"""One Realtime response: the responder writes the reply, the voice speaks it as it arrives.

Events, in the GA API's order: ``response.created``, ``conversation.item.added`` (and the beta
``conversation.item.created``), ``response.output_item.added``, ``response.content_part.added``,
``response.output_audio_transcript.delta`` / ``response.output_audio.delta`` (or
``response.output_text.delta``), their ``done`` events, ``response.content_part.done``,
``response.output_item.done``, ``conversation.item.done``, ``response.done``.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from sesame_voice import SesameVoiceError, SynthesisRequest, TextSource
from sesame_voice.api.responder import chat_messages, pick_responder, voice_system_prompt
from sesame_voice.audio import StreamResampler, to_pcm16

from .conversation import Item
from .errors import error_body, error_event, new_id
from .session_config import PCM_FORMAT, SAMPLE_RATE

if TYPE_CHECKING:  # pragma: no cover
    from .connection import RealtimeConnection

CHARS_PER_TOKEN = 4
"""``max_output_tokens`` bounds the reply at this many characters per token."""
DELTA_SAMPLES = SAMPLE_RATE // 5
"""Audio deltas carry at most 200 ms each."""


@dataclass
class Latency:
    """Seconds from the end of the user's speech (or the response request) to each stage."""

    start: float
    transcript: float | None = None
    first_token: float | None = None
    first_audio: float | None = None
    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, stage: str) -> None:
        if getattr(self, stage) is None:
            setattr(self, stage, round(time.monotonic() - self.start, 4))

    def wire(self) -> dict:
        return {"transcript_s": self.transcript, "first_token_s": self.first_token, "first_audio_s": self.first_audio}


class Reply:
    """A running response of ``connection``; ``task`` runs it, ``cancel(reason)`` stops it."""

    def __init__(self, connection: "RealtimeConnection", options: dict, speech_end: float | None) -> None:
        self.connection = connection
        self.id = new_id("resp")
        self.instructions = options.get("instructions")
        self.modalities = options.get("modalities") or connection.config.output_modalities
        self.voice = options.get("voice") or connection.config.voice
        self.metadata = options.get("metadata")
        self.latency = Latency(speech_end if speech_end is not None else time.monotonic())
        self.item = Item(
            role="assistant",
            status="in_progress",
            audio=np.zeros(0, dtype=np.float32) if "audio" in self.modalities else None,
        )
        self.status = "in_progress"
        self.status_details: dict | None = None
        self.cancel_reason: str | None = None
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"realtime-{self.id}")

    def cancel(self, reason: str) -> None:
        if self.task is not None and not self.task.done() and self.cancel_reason is None:
            self.cancel_reason = reason
            self.task.cancel()

    def wire(self) -> dict:
        body = {
            "id": self.id,
            "object": "realtime.response",
            "status": self.status,
            "status_details": self.status_details,
            "output": [self.item.wire()]
            if self.status != "in_progress" and self.item in self.connection.conversation.items
            else [],
            "conversation_id": self.connection.conversation_id,
            "output_modalities": list(self.modalities),
            "max_output_tokens": self.connection.config.max_output_tokens,
            "audio": {"output": {"format": dict(PCM_FORMAT), "voice": self.voice}},
            "metadata": self.metadata,
            "usage": None,
            "latency": self.latency.wire(),
        }
        return body

    async def _run(self) -> None:
        send = self.connection.send
        audio = "audio" in self.modalities
        await send({"type": "response.created", "response": self.wire()})
        try:
            await self._generate(audio)
            if self.cancel_reason is not None:  # the cancel landed in a task that swallowed it
                raise asyncio.CancelledError
            self.status = "completed"
        except asyncio.CancelledError:
            self.status = "cancelled"
            self.status_details = {"type": "cancelled", "reason": self.cancel_reason or "client_cancelled"}
        except SesameVoiceError as err:
            self.status = "failed"
            self.status_details = {"type": "failed", "error": {"type": "server_error", "code": err.code}}
            await send(error_event(err))
        except Exception as err:  # noqa: BLE001 - reported to the client; the session stays usable
            self.status = "failed"
            self.status_details = {"type": "failed", "error": {"type": "server_error", "code": "internal_error"}}
            await send({"type": "error", "error": error_body(err)})
        self.item.status = "completed" if self.status == "completed" else "incomplete"
        await self._finish(audio)

    async def _generate(self, audio: bool) -> None:
        connection = self.connection
        send = connection.send
        await connection.conversation.transcripts()
        self.latency.mark("transcript")
        responder = pick_responder(connection.server.responders)
        voice = connection.server.voices.get(self.voice)
        system = self.instructions or connection.config.instructions or voice_system_prompt(voice)
        messages = chat_messages(connection.conversation.turns(), system)
        previous = connection.conversation.add(self.item)
        for kind in ("conversation.item.added", "conversation.item.created"):
            await send({"type": kind, "previous_item_id": previous, "item": self.item.wire()})
        where = {"response_id": self.id, "item_id": self.item.id, "output_index": 0}
        await send(
            {"type": "response.output_item.added", "response_id": self.id, "output_index": 0, "item": self.item.wire()}
        )
        part = {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}
        await send({"type": "response.content_part.added", **where, "content_index": 0, "part": part})
        limit = connection.config.max_output_tokens
        max_chars = None if limit == "inf" else int(limit) * CHARS_PER_TOKEN
        # No pending-text limit: the responder bounds the reply's length (max_reply_chars).
        source = TextSource(first_clause=True) if audio else None
        speaking = asyncio.create_task(self._speak(source, voice.name)) if audio else None
        delta = "response.output_audio_transcript.delta" if audio else "response.output_text.delta"
        try:
            async for piece in responder.stream(messages, max_chars=max_chars):
                self.latency.mark("first_token")
                self.item.text += piece
                await send({"type": delta, **where, "content_index": 0, "delta": piece})
                if source is not None:
                    source.add(piece)
            if source is not None:
                source.finish()
                await asyncio.wait([speaking])  # a cancel lands here, not in the speaking task
                speaking.result()
        finally:
            if speaking is not None and not speaking.done():
                source.abort()
                speaking.cancel()
                await asyncio.gather(speaking, return_exceptions=True)
        if not self.item.text.strip():
            self.item.text = self.item.text.strip()

    async def _speak(self, source: TextSource, voice: str) -> None:
        """Speak the reply as it is written; 24 kHz 16-bit PCM deltas."""
        connection = self.connection
        request = SynthesisRequest(
            text="",
            text_source=source,
            first_clause=True,
            voice=voice,
            response_format="pcm",
            speed=connection.config.speed,
            frontend="realtime",
            context=connection.conversation.context() if connection.options.voice_context else [],
        )
        where = {"response_id": self.id, "item_id": self.item.id, "output_index": 0, "content_index": 0}
        async with connection.server.engine.synthesis(request) as synthesis:
            resampler = StreamResampler(synthesis.sample_rate, SAMPLE_RATE)
            async for chunk in synthesis:
                await self._send_audio(resampler.process(chunk.samples), where)
            await self._send_audio(resampler.flush(), where)

    async def _send_audio(self, samples: np.ndarray, where: dict) -> None:
        if samples.size == 0:
            return
        self.latency.mark("first_audio")
        self.item.audio = np.concatenate([self.item.audio, samples])
        for start in range(0, samples.size, DELTA_SAMPLES):
            data = base64.b64encode(to_pcm16(samples[start : start + DELTA_SAMPLES])).decode("ascii")
            await self.connection.send({"type": "response.output_audio.delta", **where, "delta": data})

    async def _finish(self, audio: bool) -> None:
        send = self.connection.send
        where = {"response_id": self.id, "item_id": self.item.id, "output_index": 0, "content_index": 0}
        if self.item in self.connection.conversation.items:
            if audio:
                await send({"type": "response.output_audio.done", **where})
                await send({"type": "response.output_audio_transcript.done", **where, "transcript": self.item.text})
                part = {"type": "audio", "transcript": self.item.text}
            else:
                await send({"type": "response.output_text.done", **where, "text": self.item.text})
                part = {"type": "text", "text": self.item.text}
            await send({"type": "response.content_part.done", **where, "part": part})
            await send(
                {
                    "type": "response.output_item.done",
                    "response_id": self.id,
                    "output_index": 0,
                    "item": self.item.wire(),
                }
            )
            await send({"type": "conversation.item.done", "item": self.item.wire()})
        await send({"type": "response.done", "response": self.wire()})
        self.connection.record_latency(self.latency)
