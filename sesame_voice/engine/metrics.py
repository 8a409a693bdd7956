"""Prometheus metrics of one server (``GET /metrics``), kept in a registry of its own."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = CONTENT_TYPE_LATEST
disable_created_metrics()  # the *_created series only double what the server exposes
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_RTF_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0, 10.0, 25.0)


class ServerMetrics:
    """Request counts, latencies, real-time factor, queue depth, errors, fallbacks and voices.

    Every server has its own registry, so two servers in one process (tests) never share counts.
    Every sample is exposed with the label ``instance`` (``METRICS_INSTANCE``, by default
    HOSTNAME:PORT), so the series of many replicas stay apart wherever they are gathered.
    """

    def __init__(self, instance: str = "") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.instance = instance
        """The value of the ``instance`` label; empty: no label."""
        self._exposed = CollectorRegistry()
        self._exposed.register(InstanceLabelled(self.registry, lambda: self.instance))
        labels = ("frontend", "voice", "format")
        self.requests = Counter(
            "sesame_voice_requests",
            "Synthesis requests by frontend, voice, format and outcome",
            (*labels, "status"),
            registry=self.registry,
        )
        self.time_to_first_audio = Histogram(
            "sesame_voice_time_to_first_audio_seconds",
            "From request to the provider's first audio",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.latency = Histogram(
            "sesame_voice_request_duration_seconds",
            "From request to the last audio sent",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.real_time_factor = Histogram(
            "sesame_voice_real_time_factor",
            "Request duration divided by the duration of the audio made",
            ("provider",),
            buckets=_RTF_BUCKETS,
            registry=self.registry,
        )
        self.audio_seconds = Counter(
            "sesame_voice_audio_seconds",
            "Seconds of audio produced",
            ("provider",),
            registry=self.registry,
        )
        self.provider_errors = Counter(
            "sesame_voice_provider_errors",
            "Requests a provider failed or could not serve",
            ("provider", "code"),
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "sesame_voice_fallbacks",
            "Requests served by a fallback provider",
            ("voice", "provider", "fell_back_from"),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "sesame_voice_queue_depth",
            "Requests queued or running per provider",
            ("provider",),
            registry=self.registry,
        )
        self.voices = Gauge("sesame_voice_voices", "Voices loaded", registry=self.registry)
        self.rejected_voice_files = Gauge(
            "sesame_voice_rejected_voice_files",
            "Voice files skipped with a reason",
            registry=self.registry,
        )
        self.provider_ready = Gauge(
            "sesame_voice_provider_ready",
            "1 when a provider is loaded and ready",
            ("provider",),
            registry=self.registry,
        )
        self._refreshers: list[Callable[[], None]] = []

    def watch(self, engine, voices) -> None:
        """Read queue depth, provider state and voice counts from these objects at every scrape."""

        def refresh() -> None:
            for name, worker in engine.workers.items():
                self.queue_depth.labels(name).set(worker.pending)
                self.provider_ready.labels(name).set(1 if worker.provider.state == "ready" else 0)
            self.voices.set(len(voices.list()))
            self.rejected_voice_files.set(len(voices.errors))

        self._refreshers.append(refresh)

    def summary(self) -> dict[str, int]:
        """Finished requests, errors, cancellations and fallbacks so far (``GET /health``'s ``requests``)."""
        by_status: dict[str, float] = {}
        for metric in self.requests.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    status = sample.labels["status"]
                    by_status[status] = by_status.get(status, 0.0) + sample.value
        fallbacks = sum(s.value for m in self.fallbacks.collect() for s in m.samples if s.name.endswith("_total"))
        errors = sum(v for status, v in by_status.items() if status not in ("ok", "cancelled"))
        return {
            "requests": int(sum(by_status.values())),
            "errors": int(errors),
            "cancelled": int(by_status.get("cancelled", 0)),
            "fallbacks": int(fallbacks),
        }

    def render(self) -> bytes:
        """The text exposition format of every metric."""
        for refresh in self._refreshers:
            refresh()
        return generate_latest(self._exposed)


class InstanceLabelled(Collector):
    """Every metric of ``registry`` with a constant ``instance`` label added to each sample.

    prometheus_client has no constant labels on its metric classes; a collector in front of the
    registry adds one without renaming anything. A sample that has its own ``instance`` keeps it.
    """

    def __init__(self, registry: CollectorRegistry, instance: Callable[[], str]) -> None:
        self.registry = registry
        self.instance = instance

    def collect(self):
        value = self.instance()
        for family in self.registry.collect():
            if not value:
                yield family
                continue
            labelled = Metric(family.name, family.documentation, family.type, family.unit)
            labelled.samples = [
                sample._replace(labels={"instance": value, **sample.labels}) for sample in family.samples
            ]
            yield labelled


class RequestTimer:
    """Times one synthesis request from its start; ``finish`` records it once."""

    def __init__(self, metrics: ServerMetrics | None, frontend: str, voice: str, fmt: str) -> None:
        self.metrics = metrics
        self.labels = (frontend or "unknown", voice, fmt)
        self.started = time.monotonic()
        self.done = False

    def first_audio(self) -> None:
        """The provider's first audio exists now."""
        if self.metrics is not None:
            self.metrics.time_to_first_audio.labels(*self.labels).observe(time.monotonic() - self.started)

    def finish(self, status: str, provider: str | None = None, audio_seconds: float = 0.0) -> None:
        """Count the request with its outcome; a served one also records latency and speed."""
        if self.done or self.metrics is None:
            return
        self.done = True
        elapsed = time.monotonic() - self.started
        self.metrics.requests.labels(*self.labels, status).inc()
        if status == "ok":
            self.metrics.latency.labels(*self.labels).observe(elapsed)
        if provider and audio_seconds > 0:
            self.metrics.audio_seconds.labels(provider).inc(audio_seconds)
            self.metrics.real_time_factor.labels(provider).observe(elapsed / audio_seconds)
