"""Two replies started at once (a spoken turn's transcript lands while a ``reply`` message is
handled): the one that ends up registered is the only one left running, so ``cancel`` and barge-in
reach whatever is playing. Before the fix the first started reply played on, out of reach, and the
barge-in test saw it finish as ``completed`` ~80 s later."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import sesame_voice_sessions.listening as listening


class SlowToStopReply:
    """Stands in for AgentReply: runs until cancelled, then takes a moment to save what was heard."""

    started: list["SlowToStopReply"] = []

    def __init__(self, *args) -> None:
        self.finished = False
        SlowToStopReply.started.append(self)

    async def run(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.05)  # the history write of an interrupted reply
            self.finished = True


async def test_overlapping_starts_leave_one_reply_running(monkeypatch):
    monkeypatch.setattr(listening, "AgentReply", SlowToStopReply)
    SlowToStopReply.started.clear()
    conversation = SimpleNamespace(sessions=SimpleNamespace(), session_id="s", send=None, send_audio=None, frontend="x")
    listener = listening.Listening(conversation)
    await listener.start_reply(latency=None)
    first = listener.reply_task
    await asyncio.sleep(0)
    # Two turns answered together while the first reply is still speaking.
    await asyncio.gather(listener.start_reply(latency=None), listener.start_reply(latency=None))
    assert len(SlowToStopReply.started) == 3
    await asyncio.sleep(0.2)
    running = [reply for reply in SlowToStopReply.started if not reply.finished]
    assert first.done()
    assert running == [listener.reply], "a reply is running that cancel cannot reach"
    assert await listener.interrupt()
    assert all(reply.finished for reply in SlowToStopReply.started)
