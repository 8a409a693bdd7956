"""A Piper sentence's first audio before the whole sentence is made: the voice's ONNX graph is cut
between its text encoder (text → latent frames, one call) and its vocoder (latent frames → samples),
and the vocoder runs on the first frames first.

Each piece is vocoded with ``CONTEXT_FRAMES`` of its neighbours' frames on either side and that
margin's samples dropped, so the pieces join into exactly the samples one call gives (the
vocoder's convolutions see no further; measured on en_US-joe-medium: 10 frames agree to 5e-7,
8 frames to 1e-3). Nothing is cut in the text: the prosody is the whole sentence's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

_LOGGER = logging.getLogger(__name__)
VOCODER_FIRST_NODE = "/dec/conv_pre/Conv"
"""The vocoder's first node in Piper's (VITS) export; its data input is the cut."""
FIRST_FRAMES = 32
"""Latent frames in a sentence's first piece (256 samples each: 0.37 s at 22050 Hz)."""
GROWTH = 4
"""Each later piece has up to this many times the frames of the one before: while one piece plays,
the next (a few times longer) is made; the rest of the sentence comes whole once it fits."""
CONTEXT_FRAMES = 10
"""Frames of each neighbour vocoded with a piece so it joins exactly (see the module docstring); each
costs about as much as a frame of audio (1 ms here), so no more than the vocoder sees."""
CALIBRATION_TEXT = "Sure, I have switched off the kitchen lights. It opens at eight in the morning."
"""Sentences whose loudest peak sets the voice's gain. Piper itself scales each sentence to its own
peak, which a sentence spoken in pieces cannot know before its end; one gain per voice keeps the
sentences' loudness as the model made it."""
HEADROOM = 0.8
"""The calibration's loudest peak is brought to this; louder sentences reach full scale (on
en_US-joe-medium, 12 sentences with the model's noise: raw peaks 0.32-0.68, calibration 0.62)."""


@dataclass
class SplitVoice:
    """A Piper voice's encoder and vocoder as two ONNX Runtime sessions."""

    encoder: object
    vocoder: object
    latent: str
    """The tensor between them: (1, channels, frames)."""
    hop: int = 256
    """Samples per latent frame."""
    gain: float = 1.0
    """Scales the vocoder's output to full scale (see ``CALIBRATION_TEXT``)."""

    def encode(self, feeds: dict) -> np.ndarray:
        """The latent frames of one sentence (``feeds``: the model's inputs, as Piper builds them)."""
        return self.encoder.run([self.latent], feeds)[0]

    def vocode(self, latent: np.ndarray, start: int, end: int) -> np.ndarray:
        """Samples of frames ``start:end`` of ``latent``, exactly as vocoding it all would give them."""
        frames = latent.shape[2]
        before, after = min(start, CONTEXT_FRAMES), min(frames - end, CONTEXT_FRAMES)
        audio = self.vocoder.run(None, {self.latent: latent[:, :, start - before : end + after]})[0].reshape(-1)
        return audio[before * self.hop : len(audio) - after * self.hop]


def piece_bounds(frames: int, first: int = FIRST_FRAMES, growth: int = GROWTH) -> Iterator[tuple[int, int]]:
    """(start, end) frames of each piece: ``first`` frames, then pieces ``growth`` times longer each;
    what is left comes whole once it is at most half a piece longer than the piece due."""
    start, size = 0, first
    while start < frames:
        end = frames if frames - start <= size * 3 // 2 else start + size
        yield start, end
        start, size = end, size * growth


def split_voice(model, make_session) -> SplitVoice | None:
    """``model`` (an ``onnx.ModelProto``) cut in two at its vocoder, as sessions made by
    ``make_session(bytes)``; None when the graph is not a VITS export whose vocoder needs only the
    latent frames (a multi-speaker voice's vocoder also takes the speaker)."""
    import onnx

    graph = model.graph
    first = next((node for node in graph.node if node.name == VOCODER_FIRST_NODE), None)
    if first is None or not first.input:
        return None
    latent = first.input[0]
    outputs = [value.name for value in graph.output]
    vocoder_nodes = _needed(graph.node, outputs, stop=latent)
    initializers = {tensor.name for tensor in graph.initializer}
    produced = {name for node in vocoder_nodes for name in node.output}
    consumed = {name for node in vocoder_nodes for name in node.input if name}
    if consumed - produced - initializers != {latent}:
        return None
    weight = _weight_shape(graph, first.input[1])  # (out, in, kernel): the latent has ``in`` channels
    channels = weight[1] if len(weight) > 1 else None
    latent_info = onnx.helper.make_tensor_value_info(latent, onnx.TensorProto.FLOAT, [1, channels, "frames"])
    encoder = _subgraph(model, _needed(graph.node, [latent]), inputs=list(graph.input), outputs=[latent_info])
    vocoder = _subgraph(model, vocoder_nodes, inputs=[latent_info], outputs=list(graph.output))
    return SplitVoice(make_session(encoder.SerializeToString()), make_session(vocoder.SerializeToString()), latent)


def _needed(nodes, outputs: list[str], stop: str | None = None) -> list:
    """The nodes ``outputs`` are computed from (not looking past tensor ``stop``), in graph order."""
    producer = {name: index for index, node in enumerate(nodes) for name in node.output}
    wanted, keep = list(outputs), set()
    while wanted:
        name = wanted.pop()
        index = producer.get(name)
        if name == stop or index is None or index in keep:
            continue
        keep.add(index)
        wanted.extend(name for name in nodes[index].input if name)
    return [nodes[index] for index in sorted(keep)]


def _weight_shape(graph, name: str) -> list[int]:
    return next((list(tensor.dims) for tensor in graph.initializer if tensor.name == name), [])


def _subgraph(model, nodes: list, inputs: list, outputs: list):
    """A copy of ``model`` with only ``nodes`` and the initializers they read."""
    import onnx

    used = {name for node in nodes for name in node.input}
    initializers = [tensor for tensor in model.graph.initializer if tensor.name in used]
    graph = onnx.helper.make_graph(nodes, model.graph.name, inputs, outputs, initializer=initializers)
    return onnx.helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)


def calibrate(split: SplitVoice, voice) -> None:
    """Measure the hop and the gain that brings the loudest of ``CALIBRATION_TEXT``'s sentences to
    ``HEADROOM`` (no noise, the model's length scale)."""
    from piper import SynthesisConfig

    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    peak = 0.0
    for phonemes in voice.phonemize(CALIBRATION_TEXT):
        latent = split.encode(model_feeds(voice, phonemes, config))
        audio = split.vocode(latent, 0, latent.shape[2])
        split.hop = len(audio) // latent.shape[2]
        peak = max(peak, float(np.max(np.abs(audio))))
    split.gain = HEADROOM / peak if peak > 1e-4 else 1.0


def model_feeds(voice, phonemes: list[str], config) -> dict:
    """The ONNX inputs Piper's ``phoneme_ids_to_audio`` builds for one sentence's phonemes."""
    ids = np.expand_dims(np.array(voice.phonemes_to_ids(phonemes), dtype=np.int64), 0)
    settings = voice.config
    scales = np.array(
        [
            settings.noise_scale if config.noise_scale is None else config.noise_scale,
            settings.length_scale if config.length_scale is None else config.length_scale,
            settings.noise_w_scale if config.noise_w_scale is None else config.noise_w_scale,
        ],
        dtype=np.float32,
    )
    feeds = {"input": ids, "input_lengths": np.array([ids.shape[1]], dtype=np.int64), "scales": scales}
    if settings.num_speakers > 1:
        speaker = settings.default_speaker_id if config.speaker_id is None else config.speaker_id
        feeds["sid"] = np.array([speaker or 0], dtype=np.int64)
    return feeds
