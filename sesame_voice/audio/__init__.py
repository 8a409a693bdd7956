"""Audio of the core, one module per job.

- ``formats``: the six response formats, their content types and sample rates.
- ``pcm``: float samples <-> 16-bit PCM (the one conversion every frontend uses).
- ``encoders``: ``StreamEncoder`` / ``encode_audio``, chunk by chunk into one valid stream.
- ``decoders``: ``decode_audio``, any of the six formats back to float samples; ``decode_file``,
  any upload PyAV reads, with clear errors for empty, non-audio, truncated or too long files.
- ``resampling``: ``StreamResampler``, seamless chunk-by-chunk rate conversion (soxr).
- ``frames``: ``Framer``, a stream resampled and cut into whole fixed-size frames (80 ms at 24 kHz).
- ``seams``: ``trim_seam``, a tight join where one phrase was spoken in two calls.
- ``stretch``: ``StreamStretcher`` / ``time_stretch``, pitch-preserving tempo change that streams.
- ``vad``: ``EnergyVad``, end-of-turn detection on streamed speech (Realtime API, session WebSocket).
"""

from .decoders import decode_audio, decode_file
from .encoders import StreamEncoder, encode_audio, encoders_available, fix_wav_sizes
from .formats import (
    CONTENT_TYPES,
    OPUS_SAMPLE_RATE,
    PCM_SAMPLE_RATE,
    WHOLE_FILE_FORMATS,
    output_rate,
)
from .frames import FRAME_RATE, Framer
from .pcm import as_mono, from_pcm16, to_pcm16
from .resampling import StreamResampler, resample
from .seams import trim_seam
from .stretch import StreamStretcher, time_stretch
from .vad import EnergyVad, VadEvent

__all__ = [
    "fix_wav_sizes",
    "resample",
    "CONTENT_TYPES",
    "EnergyVad",
    "VadEvent",
    "FRAME_RATE",
    "Framer",
    "OPUS_SAMPLE_RATE",
    "PCM_SAMPLE_RATE",
    "WHOLE_FILE_FORMATS",
    "StreamEncoder",
    "StreamResampler",
    "StreamStretcher",
    "as_mono",
    "decode_audio",
    "decode_file",
    "encode_audio",
    "encoders_available",
    "from_pcm16",
    "output_rate",
    "time_stretch",
    "to_pcm16",
    "trim_seam",
]
