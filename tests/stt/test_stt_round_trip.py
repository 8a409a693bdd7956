"""Speech → text → speech → text on the bundled Piper voice: the words survive both trips."""

from __future__ import annotations

from support import SENTENCES


async def test_round_trip_keeps_the_words(openai_client, speak, wer):
    firsts, seconds = [], []
    for sentence in SENTENCES:
        first = await openai_client.audio.transcriptions.create(
            model="whisper-1", file=("one.mp3", await speak(sentence, "mp3")), language="en"
        )
        second = await openai_client.audio.transcriptions.create(
            model="whisper-1", file=("two.opus", await speak(first.text, "opus")), language="en"
        )
        firsts.append(first.text)
        seconds.append(second.text)
    # Word error rate over the whole set, as WER is reported; tiny.en hears "with the light breeze".
    assert wer(" ".join(SENTENCES), " ".join(firsts)) <= 0.1
    assert wer(" ".join(SENTENCES), " ".join(seconds)) <= 0.1
    assert all(wer(sentence, text) <= 0.12 for sentence, text in zip(SENTENCES, seconds))
