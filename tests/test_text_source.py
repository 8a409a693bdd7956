"""Text that arrives while it is spoken: TextSource, and providers whose concurrent jobs take turns."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from fakes import FakePlugin, ToneProvider
from sesame_voice import AudioChunk, InvalidRequest, SynthesisRequest, TextSource, Voice
from sesame_voice.api.text import split_first_clause


def test_a_complete_text_is_read_whole_by_every_reader():
    source = TextSource.complete("All right then, the lights are on. See you, my friend.", first_clause=True)
    reader = source.reader()
    expected = ["All right then,", "the lights are on.", "See you, my friend."]
    assert list(reader) == expected and list(reader) == expected  # each iteration starts again


def test_first_clause_is_split_off_only_when_both_parts_are_real():
    assert split_first_clause("Well, yes.") == ["Well, yes."]
    assert split_first_clause("It costs 1,000 euros today.") == ["It costs 1,000 euros today."]
    assert split_first_clause("The door is locked; the alarm is on.") == ["The door is locked;", "the alarm is on."]


async def test_a_reader_blocks_until_the_next_sentence_is_complete():
    source = TextSource(first_clause=True)
    read: list[str] = []
    done = threading.Event()

    def consume() -> None:
        for sentence in source.reader():
            read.append(sentence)
        done.set()

    thread = threading.Thread(target=consume)
    thread.start()
    for piece in ["All right th", "en, the lights ar", "e on. See y"]:
        source.add(piece)
    await asyncio.to_thread(lambda: _until(lambda: len(read) == 2))
    assert read == ["All right then,", "the lights are on."] and not done.is_set()
    source.add("ou.")
    source.finish()
    assert await asyncio.to_thread(done.wait, 5)
    assert read == ["All right then,", "the lights are on.", "See you."]
    thread.join()


def test_a_cancelled_reader_stops_waiting():
    source = TextSource()
    cancelled = threading.Event()
    cancelled.set()
    assert list(source.reader(cancelled)) == []


def test_text_without_a_sentence_end_is_refused_and_ends_the_source():
    source = TextSource(max_pending_chars=20)
    source.add("A first sentence. ")
    with pytest.raises(InvalidRequest) as raised:
        source.add("And then it never ends " * 3)
    assert raised.value.code == "input_too_long" and source.done
    assert list(source.reader()) == ["A first sentence."]


def _until(condition, timeout: float = 5.0) -> None:
    event = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        event.wait(0.01)
    raise AssertionError("condition never became true")


class TurnTakingTone(ToneProvider):
    """A tone provider whose jobs may interleave; logs which job spoke each sentence."""

    name = "turns"
    takes_turns = True

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.log: list[str] = []
        self.gate = threading.Event()
        """Held shut on the first answer's first sentence until the test has seen the other queue up."""

    def default_voices(self):
        return [Voice(name="turns", provider=self.name)]

    def synthesize(self, job):
        for sentence in job.sentences:
            self.log.append(sentence)
            if sentence.endswith(" one.") and len(self.log) == 2:  # the first whole answer's first sentence
                self.gate.wait(10)
            yield AudioChunk(np.zeros(240, np.float32), 24000)


async def _drain(server, request: SynthesisRequest) -> int:
    async with server.engine.synthesis(request) as synthesis:
        return len([chunk async for chunk in synthesis])


async def test_concurrent_jobs_take_turns_and_a_job_waiting_for_text_steps_aside(start_server):
    async with start_server(plugins=[FakePlugin(TurnTakingTone)], default_voice="turns") as server:
        provider = server.providers["turns"]
        streamed = TextSource()
        streamed.add("Streamed one. Stre")  # the next word shows that the first sentence is complete
        turns = server.engine.workers["turns"].fair_lock
        waiting = asyncio.create_task(_drain(server, SynthesisRequest(text="", voice="turns", text_source=streamed)))
        # Spoken, and the turn given up: the streamed job now waits for text. (Its sentence is logged before
        # its audio is handed over; answers queued in that moment would wait behind it.)
        await asyncio.to_thread(lambda: _until(lambda: provider.log == ["Streamed one."] and not turns._queue))
        # Two whole answers are spoken meanwhile, taking turns.
        whole = [
            _drain(server, SynthesisRequest(text=f"{who} one. {who} two. {who} three.", voice="turns"))
            for who in ("A", "B")
        ]
        both = asyncio.gather(*whole)
        await asyncio.to_thread(lambda: _until(lambda: len(provider.log) == 2 and len(turns._queue) == 2))
        provider.gate.set()
        assert await asyncio.wait_for(both, 10) == [3, 3]
        rounds = [sentence.split()[1] for sentence in provider.log[1:]]
        assert rounds == ["one.", "one.", "two.", "two.", "three.", "three."]  # chunk by chunk, in turn
        streamed.add("amed two.")
        streamed.finish()
        assert await asyncio.wait_for(waiting, 10) == 2
        assert provider.log[-1] == "Streamed two."
