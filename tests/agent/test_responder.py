"""The responder provider kind and the built-in chat-completions responder, against a real LLM server."""

from __future__ import annotations

import asyncio

import pytest
from reply_length import REPLY_TOKENS

from sesame_voice import ResponderFailed, ResponderTimeout, ResponderUnavailable
from sesame_voice.api.responder import chat_messages, pick_responder, voice_system_prompt

pytestmark = pytest.mark.timeout(600)


@pytest.mark.drives_hook("register_responders")
async def test_the_responder_streams_what_the_llm_writes(start_agent, tiny_llm):
    from openai import AsyncOpenAI

    async with start_agent(disabled_plugins=("csm", "whisper")) as server:
        responder = pick_responder(server.responders)
        assert responder.name == "chat-completions" and responder.configured
        messages = chat_messages(
            [("user", "hello there"), ("assistant", "yes"), ("user", "tell me more")], "You are brief."
        )
        pieces = [piece async for piece in responder.stream(messages)]
        assert len(pieces) > 1  # streamed, not one answer
        url, model = tiny_llm
        direct = await AsyncOpenAI(base_url=url, api_key="unused").chat.completions.create(
            model=model, messages=messages, temperature=0, max_tokens=REPLY_TOKENS
        )
        assert "".join(pieces) == direct.choices[0].message.content
        bounded = "".join([piece async for piece in responder.stream(messages, max_chars=11)])
        assert bounded == direct.choices[0].message.content[:11]
        health = server.health()["responders"]["chat-completions"]
        assert health["configured"] and health["model"] == model


async def test_without_a_responder_nothing_changes_and_the_error_says_what_to_set(start_server):
    async with start_server(disabled_plugins=("csm", "whisper")) as server:
        assert not server.responders["chat-completions"].configured
        with pytest.raises(ResponderUnavailable, match="RESPONDER_URL"):
            pick_responder(server.responders)


async def test_a_silent_endpoint_times_out_with_a_code(start_server):
    async def hang(reader, writer):
        await reader.read(65536)
        await asyncio.sleep(30)
        writer.close()

    listener = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    env = {
        "RESPONDER_URL": f"http://127.0.0.1:{port}/v1",
        "RESPONDER_MODEL": "m",
        "RESPONDER_FIRST_TOKEN_TIMEOUT": "0.5",
        "RESPONDER_CONNECT_TIMEOUT": "0.5",
    }
    try:
        async with start_server(disabled_plugins=("csm", "whisper"), env=env) as server:
            with pytest.raises(ResponderTimeout) as err:
                async for _ in server.responders["chat-completions"].stream([{"role": "user", "content": "hi"}]):
                    pass
            assert err.value.code == "responder_timeout"
    finally:
        listener.close()


async def test_an_endpoint_error_is_reported_with_its_message(start_agent):
    async with start_agent(disabled_plugins=("csm", "whisper"), env={"RESPONDER_MODEL": "/no/such/model"}) as server:
        with pytest.raises(ResponderFailed) as err:
            async for _ in server.responders["chat-completions"].stream([{"role": "user", "content": "hi"}]):
                pass
        assert err.value.code == "responder_error"


def test_a_persona_carries_its_system_prompt():
    from sesame_voice import Voice

    assert voice_system_prompt(Voice("maya", "csm", {"system_prompt": "  You are Maya.  "})) == "You are Maya."
    assert voice_system_prompt(Voice("plain", "piper", {})) is None
    assert chat_messages([("user", "hi"), ("assistant", "")], "sys") == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hi"},
    ]


def test_presets_carry_system_prompts_as_text(tmp_path):
    from sesame_voice.voices.library import BUILTIN_PRESETS, VoiceFileError, load_preset

    for name in ("maya", "warm"):
        voice = load_preset(BUILTIN_PRESETS / f"{name}.yaml", BUILTIN_PRESETS)
        assert voice_system_prompt(voice).startswith("You are")
    bad = tmp_path / "listy.yaml"
    bad.write_text("provider: piper\nparams:\n  system_prompt: [not, text]\n")
    with pytest.raises(VoiceFileError, match="system_prompt"):
        load_preset(bad, tmp_path)
