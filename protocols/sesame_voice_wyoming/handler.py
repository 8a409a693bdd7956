"""One Wyoming connection: describe, synthesize, and streaming synthesize-start/chunk/stop."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
)

from sesame_voice import InvalidRequest, SesameVoiceError

from .asr import AsrSession
from .event_reader import MalformedEvent, read_event
from .spoken_reply import SpokenReply, StreamedReply
from .voice_choice import choose_voice

if TYPE_CHECKING:  # pragma: no cover
    from .frontend import WyomingFrontend

_LOGGER = logging.getLogger(__name__)


def _text(event: Event) -> str:
    text = event.data.get("text")
    if not isinstance(text, str):
        raise InvalidRequest(f"{event.type} needs 'text' as a string", param="text", code="invalid_event")
    return text


class WyomingHandler(AsyncEventHandler):
    """Serves one client; many run at once, each synthesis waits only on the engine."""

    def __init__(self, frontend: WyomingFrontend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        super().__init__(reader, writer)
        self.frontend = frontend
        self.server = frontend.server
        self.peer = writer.get_extra_info("peername")
        self._stream: StreamedReply | None = None
        self._asr = AsrSession(
            self.server, frontend.options, self.write_event, self.send_error, self.hang_up, frontend.stt_slots
        )

    # -- connection --------------------------------------------------------------
    async def run(self) -> None:
        """Read events until the client leaves; garbage gets an ``error`` and a disconnect."""
        self._is_running = True
        try:
            while self._is_running:
                try:
                    event = await read_event(self.reader)
                except MalformedEvent as err:
                    _LOGGER.info("Wyoming client %s sent a malformed event: %s", self.peer, err)
                    await self.send_error(str(err), "malformed_event")
                    break
                if event is None or not await self.handle_event(event):
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            _LOGGER.debug("Wyoming client %s went away", self.peer)
        finally:
            await self.disconnect()
            self.writer.close()

    async def disconnect(self) -> None:
        """Stop any streamed synthesis of this client."""
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.cancel()
        await self._asr.close()

    def hang_up(self) -> None:
        """End the connection after a bound was passed: read no more events, close the socket."""
        self._is_running = False
        self.writer.close()

    async def send_error(self, text: str, code: str) -> None:
        """Send an ``error`` event; a client that is already gone is not an error of ours."""
        try:
            await self.write_event(Error(text=text, code=code).event())
        except ConnectionError:
            pass

    async def _report(self, err: SesameVoiceError) -> None:
        _LOGGER.info("Wyoming request from %s failed: %s (%s)", self.peer, err, err.code)
        await self.send_error(str(err), err.code)

    # -- events ------------------------------------------------------------------
    async def handle_event(self, event: Event) -> bool:
        """Answer one event; False closes the connection."""
        try:
            return await self._dispatch(event)
        except SesameVoiceError as err:
            await self._report(err)
            return True
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as err:
            _LOGGER.exception("Wyoming handler failed on %s", event.type)
            await self.send_error(f"internal error: {type(err).__name__}", "internal_error")
            return False

    async def _dispatch(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event(self.frontend.info_event())
        elif Ping.is_type(event.type):
            await self.write_event(Pong(text=event.data.get("text")).event())
        elif Synthesize.is_type(event.type):
            if self._stream is None:  # in a stream it is only the compatibility copy of the text
                try:
                    await self._synthesize(event)
                except SesameVoiceError as err:
                    # Home Assistant reads a one-shot answer until audio-stop and ignores errors:
                    # closing is what tells it the request failed.
                    await self._report(err)
                    return False
        elif SynthesizeStart.is_type(event.type):
            await self._start_stream(event)
        elif SynthesizeChunk.is_type(event.type):
            if self._stream is None:
                raise InvalidRequest("synthesize-chunk outside synthesize-start/stop", code="invalid_event")
            await self._stream.add(_text(event))
        elif SynthesizeStop.is_type(event.type):
            stream, self._stream = self._stream, None
            if stream is not None:
                await stream.finish()
            await self.write_event(SynthesizeStopped().event())
        elif self._asr.handles(event.type):
            await self._asr.handle(event)
        else:
            _LOGGER.debug("Ignoring Wyoming event %s from %s", event.type, self.peer)
        return True

    async def _synthesize(self, event: Event) -> None:
        text = _text(event)
        choice = choose_voice(self.server, event.data.get("voice"))
        reply = self.frontend.reply(choice, self.write_event)
        await reply.say(text)
        await reply.finish(always=True)

    async def _start_stream(self, event: Event) -> None:
        if self._stream is not None:
            raise InvalidRequest(
                "synthesize-start inside a running stream; send synthesize-stop first", code="invalid_event"
            )
        reply: SpokenReply | None = None
        error: SesameVoiceError | None = None
        try:
            choice = choose_voice(self.server, event.data.get("voice"))
            reply = self.frontend.reply(choice, self.write_event)
        except SesameVoiceError as err:
            error = err
        options = self.frontend.options
        self._stream = StreamedReply(
            reply,
            self._report,
            self.server.settings.max_input_length,
            self.frontend.stream_idle_timeout,
            max_chars=options.stream_max_chars,
            deadline=options.stream_deadline,
            abandon=self.hang_up,
        )
        if error is not None:
            await self._report(error)  # the stream stays open so synthesize-stop still gets its reply
