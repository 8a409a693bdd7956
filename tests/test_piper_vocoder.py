"""Piper's first sentence in pieces: the graph cut at its vocoder, pieces that join into exactly what
one Piper call makes, leads spoken with their sentence, and graphs that cannot be cut spoken whole."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper
from piper import PiperVoice, SynthesisConfig

from sesame_voice import SynthesisRequest
from sesame_voice_piper import embedded_model
from sesame_voice_piper.vocoder import FIRST_FRAMES, GROWTH, VOCODER_FIRST_NODE, piece_bounds, split_voice

SENTENCES = [
    "The weather today is sunny and warm with a light breeze from the west.",
    "Later this evening clouds will move in from the coast.",
]


def _session(graph: bytes):
    return onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])


def _one_call(sentence: str) -> np.ndarray:
    """Piper's own samples for ``sentence`` in one call, before its per-sentence scaling (no noise)."""
    voice = PiperVoice.load(str(embedded_model()))
    (phonemes,) = voice.phonemize(sentence)
    quiet = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    return voice.phoneme_ids_to_audio(voice.phonemes_to_ids(phonemes), quiet).reshape(-1)


async def _chunks(server, text: str, first_clause: bool = True) -> list[np.ndarray]:
    request = SynthesisRequest(text=text, voice="joe", first_clause=first_clause)
    async with server.engine.synthesis(request) as synthesis:
        return [chunk.samples async for chunk in synthesis]


@pytest.mark.parametrize("frames", [1, 20, 48, 49, 149, 301, 2000])
def test_pieces_cover_every_frame_once_and_grow(frames):
    bounds = list(piece_bounds(frames))
    assert bounds[0][0] == 0 and bounds[-1][1] == frames
    assert all(end == start for (_, end), (start, _) in zip(bounds, bounds[1:]))
    sizes = [end - start for start, end in bounds]
    if frames > FIRST_FRAMES * 3 // 2:
        assert sizes[0] == FIRST_FRAMES
    assert all(later <= GROWTH * earlier * 3 // 2 for earlier, later in zip(sizes, sizes[1:]))


async def test_the_first_sentence_comes_in_pieces_that_join_into_one_calls_samples(start_server):
    async with start_server() as server:
        chunks = await _chunks(server, " ".join(SENTENCES))
    hop = 256
    first_call, second_call = _one_call(SENTENCES[0]), _one_call(SENTENCES[1])
    pieces = len(list(piece_bounds(len(first_call) // hop)))
    assert pieces >= 2 and len(chunks) == pieces + 1  # the second sentence is made whole
    assert len(chunks[0]) == FIRST_FRAMES * hop  # 0.37 s: the first audio leaves before the rest is made
    first = np.concatenate(chunks[:pieces])
    gain = float(np.dot(first, first_call) / np.dot(first_call, first_call))
    assert np.abs(first - gain * first_call).max() < 1e-4  # no seam: the same samples, one gain
    assert np.abs(chunks[-1] - gain * second_call).max() < 1e-4  # and the same gain for every sentence
    assert 0.25 < max(np.abs(first).max(), np.abs(chunks[-1]).max()) <= 1.0


async def test_a_lead_is_spoken_with_the_rest_of_its_sentence(start_server):
    """The engine hands Piper the lead and the rest; Piper joins them again (no prosody cut)."""
    text = "Sure, I have switched off the kitchen lights, and the front door is now locked."
    async with start_server() as server:
        with_lead = await _chunks(server, text)
        whole = await _chunks(server, text, first_clause=False)
    assert len(with_lead) == len(whole) >= 2
    assert all(np.array_equal(a, b) for a, b in zip(with_lead, whole))


def _tiny_graph(vocoder_takes_speaker: bool = False, vocoder_named: bool = True) -> onnx.ModelProto:
    """input → Relu → latent → Conv (the vocoder) → output; optionally the vocoder adds a speaker input."""
    nodes = [
        helper.make_node("Relu", ["input"], ["latent"], name="/enc/Relu"),
        helper.make_node(
            "Conv", ["latent", "w"], ["voc"], name=VOCODER_FIRST_NODE if vocoder_named else "/other/Conv", pads=[1, 1]
        ),
    ]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 2, "frames"])]
    if vocoder_takes_speaker:
        inputs.append(helper.make_tensor_value_info("speaker", TensorProto.FLOAT, [1, 1, 1]))
        nodes.append(helper.make_node("Add", ["voc", "speaker"], ["output"], name="/dec/Add"))
    else:
        nodes.append(helper.make_node("Identity", ["voc"], ["output"], name="/dec/Identity"))
    weights = helper.make_tensor("w", TensorProto.FLOAT, [1, 2, 3], np.full(6, 0.5, np.float32))
    graph = helper.make_graph(
        nodes,
        "tiny",
        inputs,
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, "frames"])],
        initializer=[weights],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_graph_is_cut_at_its_vocoder_into_two_runnable_halves():
    split = split_voice(_tiny_graph(), _session)
    signal = np.random.default_rng(3).standard_normal((1, 2, 40)).astype(np.float32)
    whole = _session(_tiny_graph().SerializeToString()).run(None, {"input": signal})[0].reshape(-1)
    latent = split.encode({"input": signal})
    split.hop = 1
    joined = np.concatenate([split.vocode(latent, start, end) for start, end in [(0, 16), (16, 40)]])
    assert np.allclose(joined, whole, atol=1e-6)


@pytest.mark.parametrize("graph", [_tiny_graph(vocoder_named=False), _tiny_graph(vocoder_takes_speaker=True)])
def test_a_graph_that_cannot_be_cut_is_left_whole(graph):
    """No VITS vocoder node, or a vocoder that also needs the speaker: Piper speaks a sentence per call."""
    assert split_voice(graph, _session) is None
