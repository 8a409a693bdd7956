"""Base class of voice providers; plugins subclass it and register it via a hook."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, ClassVar, Iterable, Iterator

from .types import AudioChunk, ProviderJob, ProviderUnavailable, Voice

if TYPE_CHECKING:  # pragma: no cover
    from .config import Settings

_LOGGER = logging.getLogger(__name__)


class Provider:
    """A speech synthesiser. Every method except ``__init__`` and ``status`` runs in its worker thread.

    Subclasses set ``name`` and implement ``synthesize``; they override ``load`` when they hold a
    model, ``discover_voices`` when files in the voices folder become voices of theirs, and set
    ``native_speed`` when they honour ``job.request.speed`` themselves.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    native_speed: ClassVar[bool] = False
    """True if ``synthesize`` applies ``request.speed`` itself (else the engine time-stretches)."""
    voice_file_suffixes: ClassVar[tuple[str, ...]] = ()
    """Suffixes of files in the voices folder that ``discover_voices`` turns into voices."""
    concurrency: int = 1
    """How many ``synthesize`` calls the engine runs at once (worker threads); >1 only for providers that
    batch or are otherwise thread-safe. Read once, when the engine starts."""

    def __init__(self, settings: "Settings") -> None:
        self.settings = settings
        self.state = "idle"  # idle | loading | ready | failed
        self.error: str | None = None
        self.progress: str | None = None
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
            except Exception as err:  # noqa: BLE001 - any load failure makes it unavailable
                self.state = "failed"
                self.error = str(err) or type(err).__name__
                _LOGGER.error("Provider %s failed to load: %s", self.name, self.error)
                raise ProviderUnavailable(self.error) from err
            self.state = "ready"
            self.error = None

    def reset_failure(self) -> None:
        """Allow a new load attempt after a failure (e.g. weights were installed)."""
        with self._load_lock:
            if self.state == "failed":
                self.state = "idle"

    def close(self) -> None:
        """Free the model."""

    def status(self) -> dict:
        """State for ``/health``: loading / ready / failed and why."""
        info = {"state": self.state, "loaded": self.state == "ready"}
        if self.error:
            info["error"] = self.error
        if self.progress:
            info["progress"] = self.progress
        return info

    # -- work --------------------------------------------------------------
    def discover_voices(self, files: Iterable["object"]) -> Iterable[Voice]:
        """Voices this provider makes of files in the voices folder (``pathlib.Path`` each)."""
        return ()

    def default_voices(self) -> Iterable[Voice]:
        """Voices that exist without any file (e.g. an embedded model)."""
        return ()

    def synthesize(self, job: ProviderJob) -> Iterator[AudioChunk]:
        """Yield audio for ``job.sentences`` in order; stop soon after ``job.cancelled`` is set."""
        raise NotImplementedError
