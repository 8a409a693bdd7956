"""The OpenAI Realtime API at /v1/realtime, driven by the ``openai`` SDK's realtime client against a
real LLM server (``transformers serve`` with a tiny random model) and the bundled Piper voice."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from realtime_helpers import append_audio, audio_of, events_until, of_type
from reply_length import REPLY_TOKENS

from sesame_voice.testing import SesameClient

QUESTION = "What is the weather like today?"
INSTRUCTIONS = "You are a helpful assistant."
pytestmark = pytest.mark.timeout(600)


async def test_spoken_turn_gets_the_llm_reply_spoken(
    start_agent, realtime_client, speech_24k, transcribe, wer, tiny_llm
):
    async with start_agent() as server:
        question = await speech_24k(server, QUESTION)
        async with realtime_client(server).realtime.connect(model="gpt-realtime") as connection:
            created = await connection.recv()
            assert created.type == "session.created"
            assert created.session.audio.output.format.rate == 24000
            await connection.session.update(
                session={
                    "type": "realtime",
                    "instructions": INSTRUCTIONS,
                    "audio": {
                        "input": {"turn_detection": None, "transcription": {"model": "whisper-1"}},
                        "output": {"voice": "joe", "format": {"type": "audio/pcm", "rate": 24000}},
                    },
                }
            )
            updated = await connection.recv()
            assert updated.type == "session.updated", updated
            assert updated.session.audio.input.turn_detection is None
            assert updated.session.instructions == INSTRUCTIONS

            await append_audio(connection, question)
            await connection.input_audio_buffer.commit()
            events = await events_until(connection, "conversation.item.input_audio_transcription.completed")
            committed = of_type(events, "input_audio_buffer.committed")[0]
            assert of_type(events, "conversation.item.created")[0].item.id == committed.item_id
            heard = events[-1].transcript
            assert events[-1].item_id == committed.item_id
            assert wer(QUESTION, heard) <= 0.1, heard  # Piper is deterministic in tests: measured 0.0

            await connection.response.create()
            events = await events_until(connection, "response.done")
        done = events[-1].response
        assert done.status == "completed", done
        written = "".join(e.delta for e in of_type(events, "response.output_audio_transcript.delta"))
        assert of_type(events, "response.output_audio_transcript.done")[0].transcript == written
        assert len(of_type(events, "response.output_audio.done")) == 1
        assert done.output[0].content[0].transcript == written

        # The LLM server, asked the same conversation directly (greedy decoding), wrote that very reply.
        from openai import AsyncOpenAI

        url, model = tiny_llm
        direct = await AsyncOpenAI(base_url=url, api_key="unused").chat.completions.create(
            model=model,
            temperature=0,
            max_tokens=REPLY_TOKENS,
            messages=[{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": heard}],
        )
        assert written == direct.choices[0].message.content
        assert written.count(".") == REPLY_TOKENS  # the tiny model's tokens are sentences

        # ... and that reply is what the voice said.
        reply_audio = audio_of(events)
        assert reply_audio.size > 24000 * 0.5
        spoken = transcribe(reply_audio, 24000)
        assert wer(written, spoken) <= 0.1, (written, spoken)

        # Latency per stage, in the event and in /metrics.
        latency = done.model_extra["latency"]
        assert 0 <= latency["transcript_s"] <= latency["first_token_s"] <= latency["first_audio_s"]
        status, _, body = await SesameClient(f"http://127.0.0.1:{server.http_port}").request("GET", "/metrics")
        assert status == 200
        counts = {
            sample.labels["stage"]: sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples
            if sample.name == "sesame_voice_agent_stage_seconds_count"
        }
        assert counts["first_audio"] == 1.0


async def test_server_vad_answers_and_cancel_stops_the_reply(start_agent, realtime_client, speech_24k):
    async with start_agent(env={"RESPONDER_MAX_TOKENS": "150"}) as server:
        question = await speech_24k(server, QUESTION)
        silence = np.zeros(24000, dtype=np.float32)
        async with realtime_client(server).realtime.connect(model="gpt-realtime") as connection:
            assert (await connection.recv()).type == "session.created"  # server VAD is the default
            await append_audio(connection, np.concatenate([silence, question, silence]))
            # Cancel once the reply is being written (150 sentences: it is far from done).
            events = await events_until(connection, "response.output_audio_transcript.delta")
            kinds = [e.type for e in events]
            for kind in (
                "input_audio_buffer.speech_started",
                "input_audio_buffer.speech_stopped",
                "input_audio_buffer.committed",
                "response.created",
            ):
                assert kind in kinds, kinds
            assert kinds.index("input_audio_buffer.speech_started") < kinds.index("input_audio_buffer.speech_stopped")
            started = of_type(events, "input_audio_buffer.speech_started")[0]
            stopped = of_type(events, "input_audio_buffer.speech_stopped")[0]
            speech_seconds = question.size / 24000
            assert 0.8 <= started.audio_start_ms / 1000 <= 1.2
            assert abs((stopped.audio_end_ms - started.audio_start_ms) / 1000 - speech_seconds) < 0.5

            response_id = of_type(events, "response.created")[0].response.id
            await connection.response.cancel()
            events += await events_until(connection, "response.done")
            done = events[-1].response
            assert done.id == response_id
            assert done.status == "cancelled"
            assert done.status_details.reason == "client_cancelled"
            assert done.output[0].status == "incomplete"
            written = "".join(e.delta for e in of_type(events, "response.output_audio_transcript.delta"))
            assert 0 < written.count(".") < 150
            assert done.output[0].content[0].transcript == written  # what was written stays, marked incomplete

            # The socket still works: cancelling again is an error, the next response completes.
            await connection.response.cancel()
            error = (await events_until(connection, "error"))[-1]
            assert error.error.code == "response_cancel_not_active"
            await connection.response.create(response={"output_modalities": ["text"]})
            events = await events_until(connection, "response.done")
            assert events[-1].response.status == "completed"
            assert of_type(events, "response.output_text.done")[0].text
            assert not of_type(events, "response.output_audio.delta")


async def test_bad_events_get_errors_and_the_socket_stays_usable(start_server, realtime_client):
    """No responder configured: everything is answered, nothing closes the socket."""
    async with start_server(disabled_plugins=("csm", "whisper"), default_voice="joe") as server:
        async with realtime_client(server).realtime.connect(model="gpt-realtime") as connection:
            assert (await connection.recv()).type == "session.created"
            bad = [
                ("this is not json", "invalid_json"),
                ('{"type": "no.such.event", "event_id": "evt_1"}', "invalid_event"),
                ('{"type": "input_audio_buffer.append", "audio": "%%%"}', "invalid_audio"),
                ('{"type": "input_audio_buffer.append", "audio": "AAAA"}', "invalid_audio"),
                (
                    '{"type": "session.update", "session": {"type": "realtime", '
                    '"tools": [{"type": "function", "name": "f"}]}}',
                    "unsupported_feature",
                ),
                (
                    '{"type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/pcmu"}}}}}',
                    "unsupported_audio_format",
                ),
                (
                    '{"type": "session.update", "session": {"audio": {"output": {"voice": "nobody-here"}}}}',
                    "voice_not_found",
                ),
                (
                    '{"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": '
                    '[{"type": "input_image", "image_url": "data:image/png;base64,AA=="}]}}',
                    "unsupported_feature",
                ),
                (
                    '{"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "c", '
                    '"output": "{}"}}',
                    "unsupported_feature",
                ),
                ('{"type": "input_audio_buffer.commit"}', "input_audio_buffer_commit_empty"),
                ('{"type": "response.cancel"}', "response_cancel_not_active"),
                ('{"type": "output_audio_buffer.clear"}', "unsupported_feature"),
            ]
            for raw, code in bad:
                await connection.send_raw(raw)
                event = (await events_until(connection, "error", timeout=30))[-1]
                assert event.error.code == code, (raw, event)
                assert event.error.message
            assert event.error.type == "invalid_request_error"

            # A text turn and a response: without a responder the error says how to configure one.
            await connection.conversation.item.create(
                item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello there"}]}
            )
            created = (await events_until(connection, "conversation.item.created"))[-1]
            assert created.item.content[0].text == "Hello there"
            await connection.response.create()
            events = await events_until(connection, "response.done")
            assert of_type(events, "error")[0].error.code == "responder_unavailable"
            assert "RESPONDER_URL" in of_type(events, "error")[0].error.message
            assert events[-1].response.status == "failed"

            # Still usable: a valid update is applied.
            await connection.session.update(session={"type": "realtime", "instructions": "Be brief."})
            updated = (await events_until(connection, "session.updated"))[-1]
            assert updated.session.instructions == "Be brief."
            assert updated.session.audio.output.voice == "joe"  # the refused updates changed nothing


async def test_a_responder_that_is_down_is_an_error_event(start_server, realtime_client, free_port):
    env = {"RESPONDER_URL": f"http://127.0.0.1:{free_port}/v1", "RESPONDER_MODEL": "any"}
    async with start_server(disabled_plugins=("csm", "whisper"), default_voice="joe", env=env) as server:
        async with realtime_client(server).realtime.connect(model="gpt-realtime") as connection:
            await connection.recv()
            await connection.conversation.item.create(
                item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello"}]}
            )
            await connection.response.create()
            events = await events_until(connection, "response.done")
            error = of_type(events, "error")[0].error
            assert error.code == "responder_unavailable" and error.type == "server_error"
            assert events[-1].response.status == "failed"
            assert events[-1].response.status_details.error.code == "responder_unavailable"
            await connection.response.create()  # the session stays usable: the next try is answered too
            assert (await events_until(connection, "response.done"))[-1].response.status == "failed"


async def test_plain_http_and_connection_limit(start_server, realtime_client):
    import aiohttp

    async with start_server(
        disabled_plugins=("csm", "whisper"), default_voice="joe", plugin_settings={"realtime": {"max_connections": 1}}
    ) as server:
        url = f"http://127.0.0.1:{server.http_port}/v1/realtime?model=x"
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as answer:
                assert answer.status == 400
                assert (await answer.json())["error"]["code"] == "websocket_required"
            async with realtime_client(server).realtime.connect(model="gpt-realtime") as connection:
                await connection.recv()
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await session.ws_connect(url.replace("http", "ws"))
                assert refused.value.status == 429


async def test_server_vad_barge_in_cancels_the_response_being_spoken(start_agent, realtime_client, speech_24k, wer):
    """The user speaks while the reply is being spoken: ``speech_started`` cancels it (``turn_detected``),
    what was written and spoken stays in the conversation (incomplete), and the new turn is answered."""
    async with start_agent(env={"RESPONDER_MAX_TOKENS": "60"}) as server:
        question = await speech_24k(server, QUESTION)
        interruption = await speech_24k(server, "Wait, please stop talking.")
        silence = np.zeros(24000, dtype=np.float32)
        async with realtime_client(server).realtime.connect(model="gpt-realtime") as connection:
            assert (await connection.recv()).type == "session.created"
            await append_audio(connection, np.concatenate([silence, question, silence]))
            events = await events_until(connection, "response.output_audio.delta")
            first = of_type(events, "response.created")[0].response.id
            await append_audio(connection, np.concatenate([interruption, silence]))
            events = await events_until(connection, "response.done")
            kinds = [e.type for e in events]
            assert kinds.index("input_audio_buffer.speech_started") < kinds.index("response.done")
            done = events[-1].response
            assert done.id == first and done.status == "cancelled", done
            assert done.status_details.reason == "turn_detected"
            item = done.output[0]
            assert item.status == "incomplete"
            written = item.content[0].transcript
            assert 0 < written.count(".") <= 60  # written (the tiny LLM is quick), not all spoken yet

            # The interruption is the next user turn; it is heard and answered.
            # (Its transcript may come before the cancelled response's done: every event since the
            # interruption counts; the question's transcript came before the first audio.)
            if not of_type(events, "conversation.item.input_audio_transcription.completed"):
                events += await events_until(connection, "conversation.item.input_audio_transcription.completed")
            heard = of_type(events, "conversation.item.input_audio_transcription.completed")[0].transcript
            assert wer("Wait, please stop talking.", heard) <= 0.1, heard
            if not of_type(events, "response.created"):
                events += await events_until(connection, "response.created")
            second = of_type(events, "response.created")[0].response.id
            assert second != first
            await connection.response.cancel()
            done = (await events_until(connection, "response.done"))[-1].response
            assert done.id == second and done.status == "cancelled"
            assert done.status_details.reason == "client_cancelled"
