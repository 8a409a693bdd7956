"""The conversation protocol over a WebSocket (docs/sessions.md).

The client sends JSON text messages ``add_turn``, ``speak``, ``cancel``, ``history`` (and with
``audio_in`` declared, microphone audio as binary messages, ``commit_audio``, ``reply``); the server
answers ``welcome`` on connect, ``turn_added``, ``audio_start``, binary messages of one 80 ms frame
each (1920 float32 little-endian samples at 24 kHz), ``done`` with the turn id, ``cancelled``, and
``error`` messages that leave the socket open. With a responder configured, user turns are answered
(``agent.AgentReply``; the messages are in docs/sessions.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import WSMsgType, web

from sesame_voice import FRAME_SAMPLES, InvalidRequest, SesameVoiceError
from sesame_voice.audio import FRAME_RATE, Framer
from sesame_voice.http.ws_keys import SESAME_PROTOCOL, refuse_key_without

from . import fields
from .listening import Listening

_LOGGER = logging.getLogger(__name__)
WS_MAX_MESSAGE = 16 * 1024 * 1024
AUDIO_FORMAT = {
    "transport": "binary",
    "encoding": "f32le",
    "sample_rate": FRAME_RATE,
    "frame_samples": FRAME_SAMPLES,
    "frame_ms": 80,
}


async def serve_conversation(
    sessions, request: web.Request, session_id: str | None, voice: str | None, frontend: str = "sessions"
) -> web.WebSocketResponse:
    """Join ``session_id`` (or create a session speaking ``voice``) and talk until the client leaves.

    An unknown session, the session limit or a plain HTTP request raise before the upgrade. A session
    created here ends with the socket unless the client asks ``?keep=true`` (or ``ws_keep`` is set)."""
    refuse_key_without(request, SESAME_PROTOCOL)  # first: the handshake logs offers it cannot take
    # sesame-voice is selected when offered: a browser sends the API key beside it (ws_keys).
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=WS_MAX_MESSAGE, protocols=(SESAME_PROTOCOL,))
    if not ws.can_prepare(request).ok:
        raise InvalidRequest(
            "this route speaks WebSocket: send an Upgrade: websocket request", code="websocket_expected"
        )
    keep = True
    if session_id:
        session = await sessions.get(session_id, audio=False)
    else:
        keep = sessions.keep_implicit or _truthy(request.query.get("keep"))
        session = await sessions.create(voice=voice)
    try:
        await ws.prepare(request)
        await Conversation(sessions, ws, session.id, frontend, keep).run(session)
    finally:
        if not keep:
            await _forget(sessions, session.id)
    return ws


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


async def _forget(sessions, session_id: str) -> None:
    """Delete a session the socket created (already gone, or the store unreachable: logged, it expires)."""
    try:
        await sessions.delete(session_id)
    except SesameVoiceError as err:
        _LOGGER.info("Session %s was not deleted with its socket: %s", session_id, err)


class Conversation:
    """One WebSocket client talking to one session."""

    def __init__(
        self, sessions, ws: web.WebSocketResponse, session_id: str, frontend: str = "sessions", keep: bool = True
    ) -> None:
        self.sessions = sessions
        self.keep = keep
        self.frontend = frontend
        self.ws = ws
        self.session_id = session_id
        self.speaking: asyncio.Task | None = None
        self.listening = Listening(self)

    async def run(self, session) -> None:
        """Greet the client, then answer its messages until it goes away."""
        await self.send(
            {
                "type": "welcome",
                "session_id": self.session_id,
                "voice": session.voice,
                "turns": len(session.turns),
                "kept": self.keep,
                "audio": AUDIO_FORMAT,
                "messages": [*HANDLERS, *self.listening.handlers],
                "answers": self.sessions.answers,
            }
        )
        try:
            async for message in self.ws:
                if message.type == WSMsgType.TEXT:
                    await self.handle_text(message.data)
                elif message.type == WSMsgType.BINARY:
                    await self.listening.on_audio(message.data)
        finally:
            await self.stop_speaking()
            await self.listening.close()

    async def send(self, payload: dict[str, Any]) -> None:
        if not self.ws.closed:
            with contextlib.suppress(ConnectionResetError):
                await self.ws.send_str(json.dumps(payload))

    async def send_audio(self, data: bytes) -> None:
        if not self.ws.closed:
            with contextlib.suppress(ConnectionResetError):
                await self.ws.send_bytes(data)

    async def error(self, code: str, message: str, request_id: Any = None) -> None:
        await self.send({"type": "error", "code": code, "message": message, "request_id": request_id})

    async def handle_text(self, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError as err:
            await self.error("invalid_json", f"message is not valid JSON: {err}")
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self.error("invalid_message", "each message must be a JSON object with a string 'type'")
            return
        kind, request_id = message["type"], message.get("request_id")
        handler = getattr(self, HANDLERS[kind]) if kind in HANDLERS else self.listening.handlers.get(kind)
        if handler is None:
            known = ", ".join([*HANDLERS, *self.listening.handlers])
            await self.error("invalid_message", f"unknown message type {kind[:64]!r}; use {known}", request_id)
            return
        try:
            await handler(message, request_id)
        except SesameVoiceError as err:
            await self.error(err.code, str(err), request_id)

    async def on_add_turn(self, message: dict, request_id: Any) -> None:
        started = self.listening.clock()
        turn = await fields.add_turn(self.sessions, self.session_id, message)
        await self.send({"type": "turn_added", "turn": turn.describe(), "request_id": request_id})
        await self.listening.turn_added(turn, message, started, request_id)

    async def on_history(self, message: dict, request_id: Any) -> None:
        session = await self.sessions.get(self.session_id, audio=False)
        await self.send({"type": "history", "session": session.describe(with_turns=True), "request_id": request_id})

    async def on_speak(self, message: dict, request_id: Any) -> None:
        if self.speaking is not None and not self.speaking.done():
            raise InvalidRequest("already speaking on this socket; send cancel first", code="session_busy")
        text = fields.speech_text(message)
        voice = fields.optional_str(message, "voice")
        self.sessions.check_voice(voice)
        speaker = fields.speaker(message, None)
        limit = fields.max_audio_ms(message)
        await self.sessions.get(self.session_id, audio=False)
        self.speaking = asyncio.create_task(self.speak(text, speaker, voice, limit, request_id))

    async def speak(
        self, text: str, speaker: int | None, voice: str | None, limit: int | None, request_id: Any
    ) -> None:
        turn_id = None
        try:
            async with self.sessions.speak(
                self.session_id, text, speaker=speaker, voice=voice, frontend=self.frontend, max_audio_length_ms=limit
            ) as spoken:
                turn_id = spoken.id
                await self.send(
                    {
                        "type": "audio_start",
                        "turn_id": spoken.id,
                        "voice": spoken.voice.name,
                        "provider": spoken.provider,
                        **AUDIO_FORMAT,
                        "request_id": request_id,
                    }
                )
                frames = await self._stream(spoken)
            await self.send(
                {
                    "type": "done",
                    "turn_id": spoken.turn.id if spoken.turn else spoken.id,
                    "frames": frames,
                    "duration_ms": frames * 80,
                    "text": text,
                    "kept": spoken.turn is not None,
                    "request_id": request_id,
                }
            )
        except asyncio.CancelledError:
            await self.send({"type": "cancelled", "turn_id": turn_id, "request_id": request_id})
            raise
        except SesameVoiceError as err:
            await self.error(err.code, str(err), request_id)
        except ConnectionResetError:
            pass
        except Exception as err:
            _LOGGER.exception("Speaking in session %s failed", self.session_id)
            await self.error("internal_error", f"{type(err).__name__}: {err}", request_id)

    async def _stream(self, spoken) -> int:
        """Send the audio as 80 ms binary frames; how many were sent."""
        framer = Framer(spoken.sample_rate)
        frames = 0
        async for chunk in spoken:
            for frame in framer.push(chunk.samples):
                await self.ws.send_bytes(frame.astype("<f4").tobytes())
                frames += 1
        for frame in framer.flush():
            await self.ws.send_bytes(frame.astype("<f4").tobytes())
            frames += 1
        return frames

    async def on_cancel(self, message: dict, request_id: Any) -> None:
        if await self.listening.interrupt():
            return
        if self.speaking is None or self.speaking.done():
            raise InvalidRequest("nothing is being spoken on this socket", code="not_speaking")
        await self.stop_speaking()

    async def stop_speaking(self) -> None:
        task, self.speaking = self.speaking, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


HANDLERS = {"add_turn": "on_add_turn", "speak": "on_speak", "cancel": "on_cancel", "history": "on_history"}
