"""The agent loop of the session WebSocket: microphone audio streamed in real time, the server's VAD
ends the turn, Whisper hears it, a real LLM server (``transformers serve``, tiny random model) writes
the reply and the bundled Piper voice speaks it; barge-in cuts the reply short."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from reply_length import REPLY_TOKENS
from session_helpers import Inbox, stream_microphone

QUESTION = "What is the weather like today?"
INTERRUPTION = "Wait, please stop talking."
pytestmark = pytest.mark.timeout(600)


@contextlib.asynccontextmanager
async def session_socket(server, voice: str = "joe"):
    """A new session over REST, its WebSocket, and an ``Inbox`` reading it."""
    base = f"http://127.0.0.1:{server.http_port}"
    async with aiohttp.ClientSession() as client:
        async with client.post(f"{base}/v1/sessions", json={"voice": voice}) as answer:
            assert answer.status == 201
            session_id = (await answer.json())["id"]
        async with client.ws_connect(f"{base}/v1/sessions/{session_id}/ws") as ws:
            inbox = Inbox(ws)
            try:
                yield ws, inbox, session_id
            finally:
                await inbox.close()


async def history(ws, inbox: Inbox, count: int) -> list[dict]:
    await ws.send_json({"type": "history"})
    return (await inbox.wait_for("history", count))["session"]["turns"]


async def test_spoken_question_gets_the_llm_reply_spoken(start_agent, speech_24k, transcribe, wer, tiny_llm):
    async with start_agent() as server:
        question = await speech_24k(server, QUESTION)
        silence = np.zeros(16000, dtype=np.float32)
        async with session_socket(server) as (ws, inbox, session_id):
            welcome = await inbox.wait_for("welcome")
            assert welcome["answers"] is True and "audio_in" in welcome["messages"]
            # A 16 kHz 16-bit microphone, streamed in real time; the server's VAD ends the turn.
            import soxr

            mic = soxr.resample(question, 24000, 16000).astype(np.float32)
            await ws.send_json({"type": "audio_in", "encoding": "s16le", "sample_rate": 16000})
            assert (await inbox.wait_for("audio_in"))["turn_detection"]["type"] == "server_vad"
            await stream_microphone(ws, np.concatenate([silence, mic, silence]), 16000)
            done = await inbox.wait_for("reply_done")
            kinds = inbox.types()
            order = ["speech_started", "speech_stopped", "transcript", "reply_started", "reply_delta", "audio_start"]
            assert [kinds.index(kind) for kind in order] == sorted(kinds.index(kind) for kind in order), kinds
            started, stopped = inbox.of_type("speech_started")[0], inbox.of_type("speech_stopped")[0]
            assert 0.8 <= started["audio_start_ms"] / 1000 <= 1.2
            assert abs((stopped["audio_end_ms"] - started["audio_start_ms"]) / 1000 - mic.size / 16000) < 0.5
            heard = inbox.of_type("transcript")[0]["text"]
            assert wer(QUESTION, heard) <= 0.1, heard

            assert done["status"] == "completed", done
            written = "".join(message["delta"] for message in inbox.of_type("reply_delta"))
            assert written == done["written"] and written.count(".") == REPLY_TOKENS
            # The LLM server, asked the same conversation directly (greedy decoding), wrote that very reply.
            from openai import AsyncOpenAI

            url, model = tiny_llm
            direct = await AsyncOpenAI(base_url=url, api_key="unused").chat.completions.create(
                model=model, temperature=0, max_tokens=REPLY_TOKENS, messages=[{"role": "user", "content": heard}]
            )
            assert written == direct.choices[0].message.content

            # ... and it is what the voice said: 80 ms float32 frames at 24 kHz, transcribed back.
            audio_start = inbox.of_type("audio_start")[0]
            assert audio_start["sample_rate"] == 24000 and audio_start["reply_id"] == done["reply_id"]
            assert all(frame.size == 1920 for _, frame in inbox.frames)
            reply_audio = inbox.audio_after(audio_start)
            assert reply_audio.size == done["frames"] * 1920
            spoken = transcribe(reply_audio, 24000)
            assert wer(written, spoken) <= 0.1, (written, spoken)

            latency = done["latency"]
            assert 0 <= latency["transcript_s"] <= latency["first_token_s"] <= latency["first_audio_s"]
            async with aiohttp.ClientSession() as client:
                async with client.get(f"http://127.0.0.1:{server.http_port}/metrics") as answer:
                    metrics = await answer.text()
            counts = {
                sample.labels["stage"]: sample.value
                for family in text_string_to_metric_families(metrics)
                for sample in family.samples
                if sample.name == "sesame_voice_session_agent_stage_seconds_count"
            }
            assert counts == {"transcript": 1.0, "first_token": 1.0, "first_audio": 1.0}

            # The history: the user's turn (its audio, transcribed), then the reply (its audio), in order.
            user, assistant = await history(ws, inbox, 1)
            assert user["text"] == heard and user["transcribed"] and not user["generated"] and user["speaker"] == 1
            assert assistant["generated"] and not assistant["interrupted"]
            assert assistant["id"] == done["turn"]["id"]
            assert wer(written, assistant["text"]) == 0.0
            assert assistant["audio_seconds"] == pytest.approx(done["frames"] * 0.08, abs=0.001)

            # A text turn is answered too, with the history as context: a different reply.
            await ws.send_json({"type": "add_turn", "text": "Tell me more.", "speaker": 1})
            second = await inbox.wait_for("reply_done", 2)
            assert second["status"] == "completed" and second["written"] != written
            turns = await history(ws, inbox, 2)
            assert [(t["generated"], t["text"]) for t in turns[2:]] == [
                (False, "Tell me more."),
                (True, turns[3]["text"]),
            ]


async def test_barge_in_cuts_the_reply_and_keeps_what_was_heard(start_agent, speech_24k, wer):
    async with start_agent(env={"RESPONDER_MAX_TOKENS": "60"}) as server:
        question = await speech_24k(server, QUESTION)
        interruption = await speech_24k(server, INTERRUPTION)
        silence = np.zeros(24000, dtype=np.float32)
        async with session_socket(server) as (ws, inbox, session_id):
            await inbox.wait_for("welcome")
            await ws.send_json({"type": "audio_in", "encoding": "s16le", "sample_rate": 24000})
            await inbox.wait_for("audio_in")
            await stream_microphone(ws, np.concatenate([silence, question, silence[:12000]]), 24000)
            # The microphone stays open (silence) while the reply plays; after 1.5 s of it the user talks.
            await inbox.wait_for("audio_start")
            while len(inbox.frames) < 19:
                await stream_microphone(ws, silence[:2400], 24000)
            await stream_microphone(ws, np.concatenate([interruption, silence]), 24000)
            cut = await inbox.wait_for("reply_done")
            barge = inbox.of_type("speech_started")[1]
            assert inbox.messages.index(barge) < inbox.messages.index(cut)
            assert cut["status"] == "interrupted", cut
            # What was sent before the user spoke stays, marked interrupted: part of the reply, not all of it.
            kept = cut["turn"]
            assert kept["interrupted"] and kept["generated"]
            written_words = cut["written"].split()
            kept_words = kept["text"].split()
            assert 0 < len(kept_words) < len(written_words)
            assert kept_words == written_words[: len(kept_words)]
            assert kept["audio_seconds"] == pytest.approx(cut["frames"] * 0.08, abs=0.001)
            assert 19 <= cut["frames"] < 19 + 40  # the user was heard within 3.2 s of talking over it

            # The interruption is the next turn, and it is answered; the client's cancel stops that reply.
            await inbox.wait_for("audio_start", 2)
            await ws.send_json({"type": "cancel"})
            second = await inbox.wait_for("reply_done", 2)
            events = [m["type"] for m in inbox.messages if m["type"] != "reply_delta"]
            assert second["status"] == "interrupted", (second["frames"], second["turn"]["text"][:60], events)
            heard = inbox.of_type("transcript")[1]["text"]
            assert wer(INTERRUPTION, heard) <= 0.1, heard
            turns = await history(ws, inbox, 1)
            assert [(t["generated"], t["interrupted"]) for t in turns] == [
                (False, False),
                (True, True),
                (False, False),
                (True, True),
            ]
            assert turns[1]["text"] == kept["text"] and turns[2]["text"] == heard


async def test_bad_audio_and_a_missing_responder_get_errors_and_the_socket_stays_usable(start_server, free_port):
    env = {"RESPONDER_URL": f"http://127.0.0.1:{free_port}/v1", "RESPONDER_MODEL": "any"}
    async with start_server(
        disabled_plugins=("csm", "whisper"),
        default_voice="joe",
        env=env,
        plugin_settings={"sessions": {"max_upload_seconds": 1}},
    ) as server:
        async with session_socket(server) as (ws, inbox, session_id):
            await inbox.wait_for("welcome")
            bad = [
                (b"\x00\x00", "audio_format_required"),
                ({"type": "audio_in", "encoding": "mulaw", "sample_rate": 8000}, "unsupported_audio_format"),
                ({"type": "audio_in", "encoding": "s16le", "sample_rate": 100}, "unsupported_audio_format"),
                ({"type": "audio_in", "encoding": "s16le"}, "unsupported_audio_format"),
                ({"type": "audio_in", "sample_rate": 16000, "turn_detection": {"threshold": 7}}, "invalid_request"),
                ({"type": "commit_audio"}, "audio_format_required"),
                ({"type": "audio_in", "encoding": "f32le", "sample_rate": 16000, "turn_detection": None}, None),
                (b"\x00\x00\x00", "invalid_audio"),
                (np.full(4, np.nan, dtype="<f4").tobytes(), "invalid_audio"),
                (np.zeros(40000, dtype="<f4").tobytes(), "audio_message_too_large"),
                ({"type": "commit_audio"}, "audio_buffer_empty"),
                *[(np.zeros(8000, dtype="<f4").tobytes(), None)] * 2,
                (np.zeros(8000, dtype="<f4").tobytes(), "audio_buffer_full"),  # 1.5 s > max_upload_seconds
                ({"type": "no_such_thing"}, "invalid_message"),
            ]
            errors = 0
            for data, code in bad:
                if isinstance(data, bytes):
                    await ws.send_bytes(data)
                else:
                    await ws.send_json(data)
                if code is None:
                    continue
                errors += 1
                error = await inbox.wait_for("error", errors, timeout=30)
                assert error["code"] == code, (data if isinstance(data, dict) else len(data), error)
                assert error["message"]
            assert len(inbox.of_type("audio_in")) == 1

            # A text turn is answered, but the responder is down: an error with its code, then reply_done.
            await ws.send_json({"type": "add_turn", "text": "Hello there.", "speaker": 1})
            done = await inbox.wait_for("reply_done")
            assert done["status"] == "failed" and done["turn"] is None
            assert inbox.of_type("error")[-1]["code"] == "responder_unavailable"
            # Still usable: the turn is in the history, a new one is added, the next reply is tried again.
            await ws.send_json({"type": "add_turn", "text": "Are you there?", "speaker": 1, "respond": False})
            assert (await inbox.wait_for("turn_added", 2))["turn"]["text"] == "Are you there?"
            await ws.send_json({"type": "reply"})
            assert (await inbox.wait_for("reply_done", 2))["status"] == "failed"
            turns = await history(ws, inbox, 1)
            assert [t["text"] for t in turns] == ["Hello there.", "Are you there?"]


async def test_a_slow_responder_is_a_timeout_error(start_server):
    """An endpoint that accepts the connection and never answers: ``responder_timeout`` after the limit."""
    held: list[asyncio.StreamWriter] = []

    async def never_answer(reader, writer):
        held.append(writer)
        await reader.read(65536)

    silent = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    env = {
        "RESPONDER_URL": f"http://127.0.0.1:{port}/v1",
        "RESPONDER_MODEL": "any",
        "RESPONDER_FIRST_TOKEN_TIMEOUT": "1",
    }
    try:
        async with start_server(disabled_plugins=("csm", "whisper"), default_voice="joe", env=env) as server:
            async with session_socket(server) as (ws, inbox, session_id):
                await inbox.wait_for("welcome")
                await ws.send_json({"type": "add_turn", "text": "Hello?", "speaker": 1})
                done = await inbox.wait_for("reply_done", timeout=60)
                assert done["status"] == "failed"
                assert inbox.of_type("error")[-1]["code"] == "responder_timeout"
                await ws.send_json({"type": "history"})
                assert len((await inbox.wait_for("history"))["session"]["turns"]) == 1
    finally:
        for writer in held:
            writer.close()
        silent.close()
        await silent.wait_closed()


async def test_without_a_responder_turns_are_not_answered(start_server):
    async with start_server(disabled_plugins=("csm", "whisper"), default_voice="joe") as server:
        async with session_socket(server) as (ws, inbox, session_id):
            assert (await inbox.wait_for("welcome"))["answers"] is False
            await ws.send_json({"type": "add_turn", "text": "Hello there.", "speaker": 1})
            await inbox.wait_for("turn_added")
            await ws.send_json({"type": "reply"})
            assert (await inbox.wait_for("error"))["code"] == "responder_unavailable"
            await ws.send_json({"type": "history"})
            await inbox.wait_for("history")
            assert "reply_started" not in inbox.types()
