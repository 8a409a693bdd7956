"""Conversation sessions over REST (``/v1/sessions``) and a WebSocket (``/v1/sessions/{id}/ws``, ``/ws``).

WebSocket protocol (docs/sessions.md): the client sends JSON text messages ``add_turn``, ``speak``,
``cancel``, ``history``; the server answers ``welcome`` on connect, ``turn_added``, ``audio_start``,
binary messages of one 80 ms frame each (1920 float32 little-endian samples at 24 kHz),
``done`` with the turn id, ``cancelled``, and ``error`` messages that leave the socket open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import WSMsgType, web

from sesame_voice import InvalidRequest, SesameVoiceError
from sesame_voice.http.context import decode_base64_audio, parse_speaker

from .errors import read_json_object
from .output import FRAME_RATE, FRAME_SAMPLES, Framer, audio_file
from .wrapper import MAX_AUDIO_MS, format_field, number_field

_LOGGER = logging.getLogger(__name__)
WS_MAX_MESSAGE = 16 * 1024 * 1024
AUDIO_FORMAT = {"transport": "binary", "encoding": "f32le", "sample_rate": FRAME_RATE, "frame_samples": FRAME_SAMPLES,
                "frame_ms": 80}


def _optional_str(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string", param=name)
    return value or None


def _speaker(body: dict, default: int | None = 0) -> int | None:
    value = body.get("speaker")
    return default if value is None else parse_speaker(value, "speaker")


def _max_audio(body: dict) -> int | None:
    return number_field(body, "max_audio_length_ms", int, 80, MAX_AUDIO_MS)


def _check_voice(server, voice: str | None) -> None:
    if voice is not None:
        server.voices.get(voice)  # UnknownVoice now, not at the first speak


async def create_session(request: web.Request, server, options) -> web.Response:
    body = await read_json_object(request) if request.can_read_body else {}
    voice = _optional_str(body, "voice") or options.voice
    _check_voice(server, voice)
    session = server.sessions.create(voice=voice, speaker=_speaker(body), session_id=_optional_str(body, "id"))
    return web.json_response(session.describe(with_turns=True), status=201)


async def list_sessions(request: web.Request, server, options) -> web.Response:
    return web.json_response({"sessions": [s.describe() for s in server.sessions.list()],
                              "limits": vars(server.sessions.limits)})


async def get_session(request: web.Request, server, options) -> web.Response:
    return web.json_response(server.sessions.get(request.match_info["session_id"]).describe(with_turns=True))


async def delete_session(request: web.Request, server, options) -> web.Response:
    server.sessions.delete(request.match_info["session_id"])
    return web.Response(status=204)


async def _add_turn(server, options, session_id: str, body: dict):
    audio = rate = None
    if body.get("audio") not in (None, ""):
        audio, rate = decode_base64_audio(body["audio"], "audio", options.max_segment_seconds)
    return await server.sessions.add_turn(session_id, text=_optional_str(body, "text"), speaker=_speaker(body),
                                          audio=audio, sample_rate=rate)


async def add_turn(request: web.Request, server, options) -> web.Response:
    session_id = request.match_info["session_id"]
    server.sessions.get(session_id)
    turn = await _add_turn(server, options, session_id, await read_json_object(request))
    return web.json_response(turn.describe(), status=201)


def _speech_text(body: dict) -> str:
    text = body.get("text")
    if not isinstance(text, str):
        raise InvalidRequest("text must be a string", param="text", code="missing_required_parameter")
    return text


async def speak(request: web.Request, server, options) -> web.StreamResponse:
    """Speak ``text`` in the session; the audio file comes back and the turn joins the history."""
    session_id = request.match_info["session_id"]
    body = await read_json_object(request)
    fmt = format_field(body.get("format"))
    voice = _optional_str(body, "voice")
    _check_voice(server, voice)
    async with server.sessions.speak(session_id, _speech_text(body), speaker=_speaker(body, None), voice=voice,
                                     frontend="legacy", max_audio_length_ms=_max_audio(body)) as spoken:
        chunks = [chunk async for chunk in spoken]
    return await audio_file(server, spoken, chunks, fmt, {"X-Sesame-Turn-Id": spoken.id})


# -- WebSocket ---------------------------------------------------------------------
async def websocket(request: web.Request, server, options) -> web.StreamResponse:
    """A conversation over one socket; an unknown session id is refused with 404 before the upgrade."""
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=WS_MAX_MESSAGE)
    if not ws.can_prepare(request).ok:
        raise InvalidRequest("this route speaks WebSocket: send an Upgrade: websocket request",
                             code="websocket_expected")
    session_id = request.match_info.get("session_id") or request.query.get("session")
    if session_id:
        session = server.sessions.get(session_id)
    else:
        session = server.sessions.create(voice=options.voice)
    await ws.prepare(request)
    await Conversation(server, options, ws, session.id).run(session)
    return ws


class Conversation:
    """One WebSocket client talking to one session."""

    def __init__(self, server, options, ws: web.WebSocketResponse, session_id: str) -> None:
        self.server = server
        self.options = options
        self.ws = ws
        self.session_id = session_id
        self.speaking: asyncio.Task | None = None

    async def run(self, session) -> None:
        """Greet the client, then answer its messages until it goes away."""
        await self.send({"type": "welcome", "session_id": self.session_id, "voice": session.voice,
                         "turns": len(session.turns), "audio": AUDIO_FORMAT,
                         "messages": ["add_turn", "speak", "cancel", "history"]})
        try:
            async for message in self.ws:
                if message.type == WSMsgType.TEXT:
                    await self.handle_text(message.data)
                elif message.type == WSMsgType.BINARY:
                    await self.error("invalid_message", "send JSON text messages; audio goes base64 in 'audio'")
        finally:
            await self.stop_speaking()

    async def send(self, payload: dict[str, Any]) -> None:
        if not self.ws.closed:
            with contextlib.suppress(ConnectionResetError):
                await self.ws.send_str(json.dumps(payload))

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
        handler = {"add_turn": self.on_add_turn, "speak": self.on_speak, "cancel": self.on_cancel,
                   "history": self.on_history}.get(kind)
        if handler is None:
            await self.error("invalid_message", f"unknown message type {kind!r}; use add_turn, speak, cancel or "
                             "history", request_id)
            return
        try:
            await handler(message, request_id)
        except SesameVoiceError as err:
            await self.error(err.code, str(err), request_id)

    async def on_add_turn(self, message: dict, request_id: Any) -> None:
        turn = await _add_turn(self.server, self.options, self.session_id, message)
        await self.send({"type": "turn_added", "turn": turn.describe(), "request_id": request_id})

    async def on_history(self, message: dict, request_id: Any) -> None:
        session = self.server.sessions.get(self.session_id)
        await self.send({"type": "history", "session": session.describe(with_turns=True), "request_id": request_id})

    async def on_speak(self, message: dict, request_id: Any) -> None:
        if self.speaking is not None and not self.speaking.done():
            raise InvalidRequest("already speaking on this socket; send cancel first", code="session_busy")
        text = _speech_text(message)
        voice = _optional_str(message, "voice")
        _check_voice(self.server, voice)
        speaker = _speaker(message, None)
        limit = _max_audio(message)
        self.server.sessions.get(self.session_id)
        self.speaking = asyncio.create_task(self.speak(text, speaker, voice, limit, request_id))

    async def speak(self, text: str, speaker: int | None, voice: str | None, limit: int | None,
                    request_id: Any) -> None:
        turn_id = None
        try:
            async with self.server.sessions.speak(self.session_id, text, speaker=speaker, voice=voice,
                                                  frontend="legacy", max_audio_length_ms=limit) as spoken:
                turn_id = spoken.id
                await self.send({"type": "audio_start", "turn_id": spoken.id, "voice": spoken.voice.name,
                                 "provider": spoken.provider, **AUDIO_FORMAT, "request_id": request_id})
                framer = Framer(spoken.sample_rate)
                frames = 0
                async for chunk in spoken:
                    for frame in framer.push(chunk.samples):
                        await self.ws.send_bytes(frame.astype("<f4").tobytes())
                        frames += 1
                for frame in framer.flush():
                    await self.ws.send_bytes(frame.astype("<f4").tobytes())
                    frames += 1
            await self.send({"type": "done", "turn_id": spoken.turn.id if spoken.turn else spoken.id,
                             "frames": frames, "duration_ms": frames * 80, "text": text,
                             "kept": spoken.turn is not None, "request_id": request_id})
        except asyncio.CancelledError:
            await self.send({"type": "cancelled", "turn_id": turn_id, "request_id": request_id})
            raise
        except SesameVoiceError as err:
            await self.error(err.code, str(err), request_id)
        except ConnectionResetError:
            pass
        except Exception as err:  # noqa: BLE001 - report it on the socket, keep serving
            _LOGGER.exception("Speaking in session %s failed", self.session_id)
            await self.error("internal_error", f"{type(err).__name__}: {err}", request_id)

    async def on_cancel(self, message: dict, request_id: Any) -> None:
        if self.speaking is None or self.speaking.done():
            raise InvalidRequest("nothing is being spoken on this socket", code="not_speaking")
        await self.stop_speaking()

    async def stop_speaking(self) -> None:
        task, self.speaking = self.speaking, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

