"""Base classes of providers; plugins subclass them and register them via a hook."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, ClassVar

from sesame_voice.api.errors import ProviderUnavailable
from sesame_voice.api.params import ParamSpec
from sesame_voice.api.types import (
    AudioChunk,
    ClipPolicy,
    ContextSegment,
    ProviderJob,
    RejectedFile,
    Voice,
)

if TYPE_CHECKING:  # pragma: no cover
    from sesame_voice.config import Settings

_LOGGER = logging.getLogger(__name__)


class ModelHolder:
    """The lifecycle shared by every kind of provider (voices, speech-to-text): load once,
    remember failures, report status. Every method except ``__init__`` and ``status`` runs in the
    provider's worker thread.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    env_names: ClassVar[tuple[str, ...]] = ()
    """Environment variables the provider reads its settings from (``service install`` passes them on)."""

    def __init__(self, settings: "Settings") -> None:
        self.settings = settings
        self.state = "idle"  # idle | loading | ready | failed
        self.error: str | None = None
        self.progress: str | None = None
        self.device: str | None = None
        """Where the model runs once loaded: "metal", "cuda", "cpu"…; shown in /health."""
        self._load_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------
    def load(self) -> None:
        """Load the model; raise ``ProviderUnavailable`` with advice when it cannot load."""

    def ensure_loaded(self) -> None:
        """Load once; remember a failure so each request does not retry a broken model."""
        with self._load_lock:
            if self.state == "ready":
                return
            if self.state == "failed":
                raise ProviderUnavailable(self.error or f"provider {self.name} failed to load")
            self.state = "loading"
            try:
                self.load()
            except Exception as err:
                self.state = "failed"
                self.error = str(err) or type(err).__name__
                _LOGGER.error("Provider %s failed to load: %s", self.name, self.error)
                raise ProviderUnavailable(self.error) from err
            self.state = "ready"
            self.error = None

    def close(self) -> None:
        """Free the model."""

    def status(self) -> dict:
        """State for ``/health``: loading / ready / failed and why."""
        info = {"state": self.state, "loaded": self.state == "ready"}
        if self.error:
            info["error"] = self.error
        if self.progress:
            info["progress"] = self.progress
        if self.device:
            info["device"] = self.device
        return info


class Provider(ModelHolder):
    """A speech synthesiser. Every method except ``__init__`` and ``status`` runs in its worker thread.

    Subclasses set ``name`` and implement ``synthesize``; they override ``load`` when they hold a
    model, ``discover_voices`` when files in the voices folder become voices of theirs, and set
    ``native_speed_range`` when they can render a tempo (``job.speed``) themselves.
    """

    native_speed_range: ClassVar[tuple[float, float]] = (1.0, 1.0)
    """Tempos (low, high; 1.0 within) that ``synthesize`` renders accurately itself, i.e. with the
    duration within a few percent of duration(1.0) / ``job.speed``. The engine sets ``job.speed``
    to the requested speed clamped to this range and time-stretches the rest; the default range
    means the provider never sees a speed other than 1.0."""
    takes_turns: ClassVar[bool] = False
    """True if concurrent jobs may interleave chunk by chunk: ``synthesize`` keeps no state in the
    model between the chunks it yields (Piper). Otherwise each job has the model to itself until done."""
    voice_file_suffixes: ClassVar[tuple[str, ...]] = ()
    """Suffixes of files in the voices folder that ``discover_voices`` turns into voices."""
    sampling_params: ClassVar[tuple[str, ...]] = ()
    """Voice parameters a request may override through ``SynthesisRequest.sampling``."""
    voice_params: ClassVar[Mapping[str, ParamSpec]] = {}
    """Every parameter this provider's voices take (voice files, fallbacks, ``sampling``), with its
    type and range. When declared, the core rejects a voice file with an unknown key or a misfit
    value, and a request whose ``sampling`` value misfits, before the provider sees it. Empty: not
    declared, nothing is checked."""
    clip_policy: ClipPolicy | None = None
    """Speaker clips (``NAME.wav`` + ``NAME.txt``) this provider can serve; None: it takes no clips.
    May be set per instance in ``__init__`` when the limits come from settings."""
    supports_context: ClassVar[bool] = False
    """True if ``synthesize`` conditions on ``job.request.context`` (earlier conversation turns).
    Otherwise the engine hands it no context, and it simply speaks."""
    context_sample_rate: ClassVar[int | None] = None
    """Rate the engine resamples context audio to before the job reaches the provider (None: as sent)."""
    DEFAULT_CONTEXT_WINDOW: ClassVar[float] = 600.0
    """The default ``context_window``: 600 seconds of speech."""
    concurrency: int = 1
    """How many ``synthesize`` calls the engine runs at once (job threads); >1 only for providers that
    batch or are otherwise thread-safe. Read once, when the engine starts."""

    # -- work --------------------------------------------------------------
    def discover_voices(self, files: Iterable["object"]) -> Iterable[Voice | RejectedFile]:
        """Voices this provider makes of files in the voices folder (``pathlib.Path`` each).

        Yield a ``RejectedFile(path, reason)`` for a file that cannot become a voice: it is listed
        with its reason and the provider's other voices stay.
        """
        return ()

    def default_voices(self) -> Iterable[Voice]:
        """Voices that exist without any file (e.g. an embedded model)."""
        return ()

    def context_window(self, params) -> float:
        """How much context (in ``context_cost`` units) fits beside a generation with these voice params.

        Called in a helper thread (not the worker, which may be busy generating): keep it quick
        and independent of the loaded model.
        """
        return self.DEFAULT_CONTEXT_WINDOW

    def context_cost(self, segment: ContextSegment) -> float:
        """What one context segment takes of ``context_window``; default seconds (audio, or text at 15 chars/s)."""
        if segment.audio is not None and segment.sample_rate:
            return len(segment.audio) / float(segment.sample_rate)
        return len(segment.text or "") / 15.0

    def synthesize(self, job: ProviderJob) -> Iterator[AudioChunk]:
        """Yield audio for ``job.sentences`` in order; stop soon after ``job.cancelled`` is set."""
        raise NotImplementedError
