"""One ``/v1/realtime`` WebSocket: client events in, server events out, one response at a time."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from typing import Any

from aiohttp import WSMsgType, web

from sesame_voice import SesameVoiceError
from sesame_voice.audio import EnergyVad, from_pcm16

from .conversation import Conversation, Item
from .errors import RealtimeError, error_event, new_id
from .reply import Latency, Reply
from .session_config import SAMPLE_RATE, SessionConfig, apply_update

_LOGGER = logging.getLogger(__name__)
MIN_COMMIT_MS = 100
"""A manual commit needs at least this much audio (OpenAI's rule)."""


def _b64_audio(value: Any, param: str) -> bytes:
    if not isinstance(value, str):
        raise RealtimeError(f"{param} must be base64-encoded 16-bit PCM at 24 kHz", param=param, code="invalid_audio")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise RealtimeError(f"{param} is not valid base64", param=param, code="invalid_audio") from None
    if len(data) % 2:
        raise RealtimeError(
            f"{param}: 16-bit PCM has an even number of bytes, got {len(data)}", param=param, code="invalid_audio"
        )
    return data


class RealtimeConnection:
    """State of one client: session configuration, input audio buffer, conversation, running response."""

    def __init__(self, server, ws: web.WebSocketResponse, options, model: str, metrics) -> None:
        self.server = server
        self.ws = ws
        self.options = options
        self.metrics = metrics
        self.config = SessionConfig(id=new_id("sess"), model=model, voice=server.settings.default_voice)
        self.conversation = Conversation(options.max_items)
        self.conversation_id = new_id("conv")
        self.buffer = bytearray()
        self.buffer_start_ms = 0
        """Audio time (ms since the connection opened) of the buffer's first sample."""
        self.vad: EnergyVad | None = None
        self.speech_item_id: str | None = None
        self.reply: Reply | None = None
        self.closed = False
        self._send_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._reset_vad()

    # -- output ------------------------------------------------------------------------------------
    async def send(self, event: dict) -> None:
        """Send a server event (an ``event_id`` is added); a gone client is noted, not raised."""
        if self.closed or self.ws.closed:
            self.closed = True
            return
        try:
            async with self._send_lock:
                await self.ws.send_str(json.dumps({"event_id": new_id("event"), **event}, separators=(",", ":")))
        except (ConnectionError, RuntimeError):
            self.closed = True

    def record_latency(self, latency: Latency) -> None:
        if self.metrics is not None:
            for stage, seconds in latency.wire().items():
                if seconds is not None:
                    self.metrics.labels(stage=stage.removesuffix("_s")).observe(seconds)

    # -- the loop ----------------------------------------------------------------------------------
    async def run(self) -> None:
        await self.send({"type": "session.created", "session": self.config.wire()})
        try:
            async for message in self.ws:
                if message.type == WSMsgType.TEXT:
                    await self._handle_text(message.data)
                elif message.type == WSMsgType.BINARY:
                    await self.send(
                        error_event(
                            RealtimeError(
                                "binary frames are not part of the Realtime API; send JSON events "
                                "(input_audio_buffer.append carries base64 audio)",
                                code="invalid_event",
                            )
                        )
                    )
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            self.closed = True
            if self.reply is not None:
                self.reply.cancel("client_cancelled")
            tasks = [t for t in (*self._tasks, self.reply.task if self.reply else None) if t is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _handle_text(self, text: str) -> None:
        event_id = None
        try:
            try:
                event = json.loads(text)
            except ValueError:
                raise RealtimeError("the message is not JSON", code="invalid_json") from None
            if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                raise RealtimeError(
                    "an event is a JSON object with a string 'type'", param="type", code="invalid_event"
                )
            event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
            handler = HANDLERS.get(event["type"])
            if handler is None:
                hint = UNSUPPORTED.get(event["type"])
                raise RealtimeError(
                    hint or f"unknown event type {event['type'][:64]!r}",
                    param="type",
                    code="unsupported_feature" if hint else "invalid_event",
                )
            await handler(self, event)
        except (RealtimeError, SesameVoiceError) as err:
            await self.send(error_event(err, event_id))
        except Exception as err:
            _LOGGER.exception("Realtime event failed")
            await self.send(error_event(err, event_id))

    # -- session -----------------------------------------------------------------------------------
    async def session_update(self, event: dict) -> None:
        self.config = apply_update(self.config, event.get("session"), self.server.voices.get)
        self._reset_vad()
        await self.send({"type": "session.updated", "session": self.config.wire()})

    def _reset_vad(self) -> None:
        vad = self.config.turn_detection
        self.vad = (
            None
            if vad is None
            else EnergyVad(SAMPLE_RATE, threshold=vad["threshold"], silence_duration_ms=vad["silence_duration_ms"])
        )
        self.buffer_start_ms = 0 if self.vad is not None else self.buffer_start_ms
        self.buffer.clear()
        self.speech_item_id = None

    # -- input audio -------------------------------------------------------------------------------
    async def buffer_append(self, event: dict) -> None:
        data = _b64_audio(event.get("audio"), "audio")
        limit = int(self.options.max_input_seconds * SAMPLE_RATE * 2)
        if len(self.buffer) + len(data) > limit:
            raise RealtimeError(
                f"the input audio buffer holds at most {self.options.max_input_seconds:g} s; commit or clear it",
                param="audio",
                code="input_audio_buffer_full",
            )
        self.buffer.extend(data)
        if self.vad is None:
            return
        for change in self.vad.feed(from_pcm16(data)):
            if change.kind == "speech_started":
                await self._speech_started(change.ms)
            else:
                await self._speech_stopped(change.ms)
        if not self.vad.in_speech:  # keep only the prefix padding while nobody speaks
            keep = int(self.config.turn_detection["prefix_padding_ms"] * SAMPLE_RATE / 1000) * 2
            if len(self.buffer) > keep:
                drop = len(self.buffer) - keep
                del self.buffer[:drop]
                self.buffer_start_ms += drop * 1000 // (SAMPLE_RATE * 2)

    async def _speech_started(self, ms: int) -> None:
        self.speech_item_id = new_id("item")
        await self.send(
            {"type": "input_audio_buffer.speech_started", "audio_start_ms": ms, "item_id": self.speech_item_id}
        )
        if self.reply is not None and self.config.turn_detection.get("interrupt_response", True):
            self.reply.cancel("turn_detected")

    async def _speech_stopped(self, ms: int) -> None:
        speech_end = time.monotonic()
        item_id = self.speech_item_id or new_id("item")
        await self.send({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": ms, "item_id": item_id})
        end = max(0, (ms - self.buffer_start_ms) * SAMPLE_RATE // 1000 * 2)
        audio, rest = bytes(self.buffer[:end]), bytes(self.buffer[end:])
        self.buffer = bytearray(rest)
        self.buffer_start_ms = ms
        await self._commit_audio(audio, item_id)
        if self.config.turn_detection.get("create_response", True):
            if self.reply is None:
                await self._start_reply({}, speech_end)
            elif self.reply.cancel_reason is not None:  # barge-in: answer once the cancelled response ended
                self._spawn(self._reply_after(self.reply, speech_end))
        self.speech_item_id = None

    async def _reply_after(self, cancelled: Reply, speech_end: float) -> None:
        await asyncio.gather(cancelled.task, return_exceptions=True)
        if self.reply is None and not self.closed:
            await self._start_reply({}, speech_end)

    async def buffer_commit(self, event: dict) -> None:
        if len(self.buffer) < MIN_COMMIT_MS * SAMPLE_RATE // 1000 * 2:
            raise RealtimeError(
                f"the input audio buffer holds less than {MIN_COMMIT_MS} ms of audio",
                code="input_audio_buffer_commit_empty",
            )
        audio = bytes(self.buffer)
        self.buffer_start_ms += len(self.buffer) * 1000 // (SAMPLE_RATE * 2)
        self.buffer.clear()
        await self._commit_audio(audio, self.speech_item_id or new_id("item"))
        self.speech_item_id = None
        self._last_commit = time.monotonic()

    async def buffer_clear(self, event: dict) -> None:
        self.buffer.clear()
        self.speech_item_id = None
        await self.send({"type": "input_audio_buffer.cleared"})

    async def _commit_audio(self, audio: bytes, item_id: str) -> None:
        item = Item(role="user", audio=from_pcm16(audio), id=item_id, transcribed=asyncio.Event())
        previous = self.conversation.add(item)
        await self.send({"type": "input_audio_buffer.committed", "item_id": item.id, "previous_item_id": previous})
        await self._announce(item, previous)
        self._spawn(self._transcribe(item))

    async def _announce(self, item: Item, previous: str | None) -> None:
        for kind in ("conversation.item.added", "conversation.item.created"):
            await self.send({"type": kind, "previous_item_id": previous, "item": item.wire()})
        if item.done_transcribing:
            await self.send({"type": "conversation.item.done", "previous_item_id": previous, "item": item.wire()})

    async def _transcribe(self, item: Item) -> None:
        options = self.config.transcription or {}
        try:
            transcript = await self.server.speech_to_text.transcribe(
                item.audio, SAMPLE_RATE, language=options.get("language") or None, prompt=options.get("prompt") or None
            )
            item.text = transcript.text.strip()
            item.transcribed.set()
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item.id,
                    "content_index": 0,
                    "transcript": item.text,
                    "usage": {"type": "duration", "seconds": round(item.audio.size / SAMPLE_RATE, 3)},
                }
            )
        except SesameVoiceError as err:
            item.transcribed.set()
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.failed",
                    "item_id": item.id,
                    "content_index": 0,
                    "error": error_event(err)["error"],
                }
            )
        finally:
            item.transcribed.set()
        await self.send({"type": "conversation.item.done", "item": item.wire()})

    def _spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- conversation ------------------------------------------------------------------------------
    async def item_create(self, event: dict) -> None:
        item = _parse_item(event.get("item"))
        previous = self.conversation.add(item, event.get("previous_item_id"))
        await self._announce(item, previous)
        if not item.done_transcribing:
            self._spawn(self._transcribe(item))

    async def item_delete(self, event: dict) -> None:
        self.conversation.delete(event.get("item_id"))
        await self.send({"type": "conversation.item.deleted", "item_id": event.get("item_id")})

    async def item_retrieve(self, event: dict) -> None:
        await self.send(
            {"type": "conversation.item.retrieved", "item": self.conversation.get(event.get("item_id")).wire()}
        )

    async def item_truncate(self, event: dict) -> None:
        item = self.conversation.get(event.get("item_id"))
        end_ms = event.get("audio_end_ms")
        if item.role != "assistant" or isinstance(end_ms, bool) or not isinstance(end_ms, int) or end_ms < 0:
            raise RealtimeError("truncate takes an assistant item and audio_end_ms >= 0", param="audio_end_ms")
        if item.audio is not None:
            item.audio = item.audio[: end_ms * SAMPLE_RATE // 1000]
        await self.send(
            {
                "type": "conversation.item.truncated",
                "item_id": item.id,
                "content_index": event.get("content_index", 0),
                "audio_end_ms": end_ms,
            }
        )

    # -- responses ---------------------------------------------------------------------------------
    async def response_create(self, event: dict) -> None:
        options = event.get("response") or {}
        if not isinstance(options, dict):
            raise RealtimeError("response must be an object", param="response")
        if options.get("tools"):
            raise RealtimeError(
                "tools are not supported by this server", param="response.tools", code="unsupported_feature"
            )
        if options.get("conversation", "auto") != "auto" or options.get("input") is not None:
            raise RealtimeError(
                "out-of-band responses (conversation 'none', input) are not supported",
                param="response.conversation",
                code="unsupported_feature",
            )
        if self.reply is not None:
            raise RealtimeError(
                f"the conversation already has an active response ({self.reply.id})",
                code="conversation_already_has_active_response",
            )
        parsed: dict = {}
        if options.get("instructions") is not None:
            if not isinstance(options["instructions"], str):
                raise RealtimeError("response.instructions must be a string", param="response.instructions")
            parsed["instructions"] = options["instructions"]
        modalities = options.get("output_modalities", options.get("modalities"))
        if modalities is not None:
            if not isinstance(modalities, list) or not modalities or not set(modalities) <= {"audio", "text"}:
                raise RealtimeError(
                    "output_modalities must be ['audio'] or ['text']", param="response.output_modalities"
                )
            parsed["modalities"] = ["audio"] if "audio" in modalities else ["text"]
        voice = ((options.get("audio") or {}).get("output") or {}).get("voice", options.get("voice"))
        if voice is not None:
            self.server.voices.get(voice if isinstance(voice, str) else None)
            parsed["voice"] = voice
        if isinstance(options.get("metadata"), dict):
            parsed["metadata"] = options["metadata"]
        await self._start_reply(parsed, getattr(self, "_last_commit", None))

    async def _start_reply(self, options: dict, speech_end: float | None) -> None:
        reply = Reply(self, options, speech_end)
        self.reply = reply
        reply.start()
        reply.task.add_done_callback(lambda _task: self._reply_ended(reply))

    def _reply_ended(self, reply: Reply) -> None:
        if self.reply is reply:
            self.reply = None

    async def response_cancel(self, event: dict) -> None:
        wanted = event.get("response_id")
        if self.reply is None or (wanted and wanted != self.reply.id):
            raise RealtimeError(
                "there is no active response to cancel"
                if self.reply is None
                else f"response {str(wanted)[:64]!r} is not the active one",
                param="response_id",
                code="response_cancel_not_active",
            )
        self.reply.cancel("client_cancelled")


def _parse_item(data: Any) -> Item:
    if not isinstance(data, dict):
        raise RealtimeError("item must be an object", param="item")
    if data.get("type", "message") != "message":
        raise RealtimeError(
            "only message items are supported (no function calls: tools are not supported)",
            param="item.type",
            code="unsupported_feature",
        )
    role = data.get("role")
    if role not in ("user", "assistant", "system"):
        raise RealtimeError("item.role must be 'user', 'assistant' or 'system'", param="item.role")
    content = data.get("content")
    if not isinstance(content, list) or not content:
        raise RealtimeError("item.content must be a non-empty list", param="item.content")
    texts, audio, transcript = [], None, None
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        param = f"item.content[{index}]"
        if kind in ("input_text", "text", "output_text"):
            if not isinstance(part.get("text"), str):
                raise RealtimeError(f"{param}.text must be a string", param=f"{param}.text")
            texts.append(part["text"])
        elif kind in ("input_audio", "audio", "output_audio") and role == "user":
            audio = from_pcm16(_b64_audio(part.get("audio"), f"{param}.audio"))
            transcript = part.get("transcript") if isinstance(part.get("transcript"), str) else None
        elif kind == "input_image":
            raise RealtimeError(
                "images are not supported by this server", param=f"{param}.type", code="unsupported_feature"
            )
        else:
            raise RealtimeError(
                f"{param}.type {str(kind)[:32]!r} is not supported for a {role} message", param=f"{param}.type"
            )
    item = Item(role=role, text=" ".join(t for t in texts if t).strip(), audio=audio)
    if isinstance(data.get("id"), str) and data["id"]:
        item.id = data["id"][:64]
    if audio is not None:
        if transcript:
            item.text = transcript
        elif audio.size:
            item.transcribed = asyncio.Event()
    return item


HANDLERS = {
    "session.update": RealtimeConnection.session_update,
    "input_audio_buffer.append": RealtimeConnection.buffer_append,
    "input_audio_buffer.commit": RealtimeConnection.buffer_commit,
    "input_audio_buffer.clear": RealtimeConnection.buffer_clear,
    "conversation.item.create": RealtimeConnection.item_create,
    "conversation.item.delete": RealtimeConnection.item_delete,
    "conversation.item.retrieve": RealtimeConnection.item_retrieve,
    "conversation.item.truncate": RealtimeConnection.item_truncate,
    "response.create": RealtimeConnection.response_create,
    "response.cancel": RealtimeConnection.response_cancel,
}
UNSUPPORTED = {
    "output_audio_buffer.clear": "output_audio_buffer.clear belongs to WebRTC/SIP connections; "
    "send response.cancel to stop a response",
    "transcription_session.update": "transcription-only sessions are not supported",
}
