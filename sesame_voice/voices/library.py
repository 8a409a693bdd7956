"""The voices folder: YAML presets, speaker-clip clones and provider voice files, hot-reloaded."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sesame_voice.api.errors import UnknownVoice
from sesame_voice.api.types import ClipPolicy, RejectedFile, Voice
from sesame_voice.voices.validation import VoiceFileError, check_preset, validated

_LOGGER = logging.getLogger(__name__)

VOICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PRESET_SUFFIXES = (".yaml", ".yml")
CLIP_SUFFIX = ".wav"
TRANSCRIPT_SUFFIX = ".txt"
DESCRIPTION_SUFFIX = ".description"
"""An optional ``NAME.description`` next to a clip holds the clone's description (one line)."""
MIN_CLIP_SECONDS = 0.5
"""Shorter clips hold too little speech for any provider; the upper limit is each provider's own."""
BUILTIN_PRESETS = Path(__file__).resolve().parent / "presets"
"""Presets shipped inside the package; the user's voices folder adds to and overrides them."""
PATH_PARAMS = ("prompt_audio", "model")
"""Voice parameters holding file names; they must resolve inside the voices folder."""


@dataclass(frozen=True)
class VoiceChanges:
    """What one re-scan of the voices folder changed, by voice name."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    """Voices still there whose definition changed (an edited file)."""

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass
class VoiceSet:
    """One scan of the voices folder."""

    voices: dict[str, Voice] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    """File name → why it was skipped."""


def _inside(folder: Path, candidate: Path) -> Path:
    """Resolve ``candidate`` against ``folder`` and refuse anything outside it."""
    resolved = (folder / candidate).resolve()
    if not resolved.is_relative_to(folder.resolve()):
        raise VoiceFileError(f"path {str(candidate)!r} points outside the voices folder")
    return resolved


def _check_name(name: str) -> str:
    if not VOICE_NAME.match(name):
        raise VoiceFileError(f"voice name {name!r} must be letters, digits, '_', '.', '-' (max 64)")
    return name


def _resolve_paths(folder: Path, params: Mapping[str, Any]) -> dict[str, Any]:
    resolved = dict(params)
    for key in PATH_PARAMS:
        if key in resolved and resolved[key] is not None:
            path = _inside(folder, Path(str(resolved[key])))
            if not path.is_file():
                raise VoiceFileError(f"{key} file {resolved[key]!r} does not exist")
            resolved[key] = str(path)
    return resolved


def load_preset(path: Path, folder: Path) -> Voice:
    """A Voice from one YAML preset file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise VoiceFileError(f"unreadable YAML: {err}") from None
    if not isinstance(data, Mapping):
        raise VoiceFileError("expected a mapping with at least 'provider'")
    check_preset(data)
    name = _check_name(str(data.get("name") or path.stem))
    provider = data.get("provider")
    if not isinstance(provider, str) or not provider:
        raise VoiceFileError("'provider' must name a voice provider")
    params = data.get("params") or {}
    if not isinstance(params, Mapping) or not isinstance(params.get("system_prompt", ""), str):
        raise VoiceFileError("'params' must be a mapping (its 'system_prompt' text)")
    fallbacks = []
    for item in data.get("fallbacks") or []:
        if isinstance(item, str):
            item = {"provider": item}
        if not isinstance(item, Mapping) or not isinstance(item.get("provider"), str):
            raise VoiceFileError("each fallback must be a provider name or a mapping with 'provider'")
        fallbacks.append(_resolve_paths(folder, item))
    aliases = data.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise VoiceFileError("'aliases' must be a list of names")
    languages = data.get("languages") or ["en"]
    speakers = data.get("speakers") or []
    return Voice(
        name=name,
        provider=provider,
        params=_resolve_paths(folder, params),
        description=str(data.get("description") or "").strip(),
        aliases=tuple(a.lower() for a in aliases),
        languages=tuple(str(lang) for lang in languages),
        fallbacks=tuple(fallbacks),
        speakers=tuple(str(s) for s in speakers),
        source=path,
    )


def load_clone(clip: Path, providers: Mapping[str, Any]) -> Voice:
    """A Voice whose prompt is a speaker clip ``NAME.wav`` with its transcript ``NAME.txt``.

    The providers' ``clip_policy`` decide who may serve it: those that clone and accept the clip's
    length, highest priority first, then the stand-ins; no cloner accepting it is an error saying why.
    """
    import numpy as np
    import soundfile as sf

    name = _check_name(clip.stem)
    transcript_path = clip.with_suffix(TRANSCRIPT_SUFFIX)
    if not transcript_path.is_file():
        raise VoiceFileError(f"clip has no transcript: add {transcript_path.name}")
    transcript = transcript_path.read_text(encoding="utf-8", errors="replace").strip()
    if not transcript:
        raise VoiceFileError(f"transcript {transcript_path.name} is empty")
    try:
        samples, rate = sf.read(str(clip), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise VoiceFileError(f"not a readable audio file: {err}") from None
    duration = len(samples) / float(rate)
    if duration < MIN_CLIP_SECONDS:
        raise VoiceFileError(f"clip is {duration:.1f} s long; use at least {MIN_CLIP_SECONDS} s of speech")
    if float(np.sqrt(np.mean(np.square(samples)))) < 1e-4:
        raise VoiceFileError("clip is silent")
    order = clip_providers(providers, duration)
    description_path = clip.with_suffix(DESCRIPTION_SUFFIX)
    description = ""
    if description_path.is_file():
        description = description_path.read_text(encoding="utf-8", errors="replace").strip()[:500]
    return Voice(
        name=name,
        provider=order[0],
        params={"prompt_audio": str(clip.resolve()), "prompt_text": transcript},
        description=description or f"Voice cloned from {clip.name}",
        fallbacks=tuple({"provider": other} for other in order[1:]),
        source=clip,
    )


def clip_providers(providers: Mapping[str, Any], seconds: float) -> list[str]:
    """Provider names that may serve a clip this long, in order; VoiceFileError when none clones it."""
    cloners: list[tuple[int, str]] = []
    stand_ins: list[tuple[int, str]] = []
    refusals: list[str] = []
    for name, provider in providers.items():
        policy: ClipPolicy | None = getattr(provider, "clip_policy", None)
        if policy is None:
            continue
        refusal = policy.refusal(seconds)
        if refusal is not None:
            if policy.clones:
                refusals.append(f"{name} accepts {policy.min_seconds:g}–{policy.max_seconds:g} s")
            continue
        (cloners if policy.clones else stand_ins).append((-policy.priority, name))
    if not cloners:
        if refusals:
            raise VoiceFileError(f"clip is {seconds:.1f} s long; no provider clones it ({'; '.join(refusals)})")
        raise VoiceFileError("no installed provider clones speaker clips")
    return [name for _, name in sorted(cloners)] + [name for _, name in sorted(stand_ins)]


def folder_signature(folder: Path) -> tuple:
    """Cheap fingerprint of the folder (names, sizes, mtimes) to detect changes."""
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return ()
    signature = []
    for entry in entries:
        try:
            stat = entry.stat()
        except OSError:
            continue
        signature.append((entry.name, stat.st_size, stat.st_mtime_ns))
    return tuple(signature)


class VoiceLibrary:
    """All voices: provider defaults plus what the voices folder holds; re-scanned on change.

    ``providers`` maps provider names to objects with ``default_voices()``, ``discover_voices(files)``
    and ``voice_file_suffixes`` (``Provider`` instances).
    """

    def __init__(
        self,
        folder: Path,
        providers: Mapping[str, Any],
        default_voice: str,
        builtin_folder: Path | None = BUILTIN_PRESETS,
    ) -> None:
        self.folder = Path(folder)
        self.builtin_folder = builtin_folder
        self.providers = providers
        self.default_voice = default_voice
        self.current = VoiceSet()
        self._signature: tuple | None = None
        self.listeners: list[Callable[[VoiceChanges], Any]] = []
        self.call_in_provider: Callable[[Any, Callable[[], Any]], Any] = lambda provider, function: function()
        """Runs a provider method (``default_voices``, ``discover_voices``) in that provider's thread."""

    # -- scanning ------------------------------------------------------------
    def scan(self) -> VoiceSet:
        """Read the folder now (blocking IO) and return what it holds."""
        found = VoiceSet()

        builtin: set[str] = set()

        def add(voice: Voice, origin: str) -> None:
            if not any(name in self.providers for name, _ in voice.candidates()):
                wanted = " or ".join(repr(name) for name, _ in voice.candidates())
                found.errors[origin] = (
                    f"no provider {wanted} is installed (installed: {', '.join(self.providers) or 'none'})"
                )
                return
            try:
                voice = validated(voice, self.providers)
            except VoiceFileError as err:
                found.errors[origin] = str(err)
                return
            key = voice.name.lower()
            if key in builtin:  # the user's file replaces the shipped preset of that name
                builtin.discard(key)
                _LOGGER.info("Voice %s from %s overrides the built-in preset", voice.name, origin)
            elif key in found.voices:
                found.errors[origin] = (
                    f"voice {voice.name!r} already defined by {found.voices[key].source or 'a provider'}"
                )
                return
            found.voices[key] = voice

        if self.builtin_folder is not None and self.builtin_folder.is_dir():
            for path in sorted(self.builtin_folder.glob("*.yaml")):
                self._load_into(
                    found, path, lambda p=path: load_preset(p, self.builtin_folder), add, origin=f"built-in {path.name}"
                )
            builtin.update(found.voices)
        for provider in self.providers.values():
            if not _overrides(provider, "default_voices"):
                continue  # never queue behind a provider's model load for nothing
            produce = lambda p=provider: self.call_in_provider(p, p.default_voices)  # noqa: E731
            for voice in _safely(produce, found.errors, f"provider {provider.name}"):
                add(voice, f"provider {provider.name}")
        files = sorted(p for p in self.folder.iterdir() if p.is_file()) if self.folder.is_dir() else []
        claimed: set[Path] = set()
        for path in files:
            if path.suffix.lower() in PRESET_SUFFIXES:
                claimed.add(path)
                self._load_into(found, path, lambda p=path: load_preset(p, self.folder), add)
            elif path.suffix.lower() == CLIP_SUFFIX:
                claimed.update({path, path.with_suffix(TRANSCRIPT_SUFFIX), path.with_suffix(DESCRIPTION_SUFFIX)})
                self._load_into(found, path, lambda p=path: load_clone(p, self.providers), add)
        for provider in self.providers.values():
            suffixes = tuple(getattr(provider, "voice_file_suffixes", ()))
            mine = [p for p in files if p not in claimed and p.name.endswith(suffixes)] if suffixes else []
            if not mine or not _overrides(provider, "discover_voices"):
                continue
            produce = lambda p=provider, m=mine: self.call_in_provider(p, lambda: list(p.discover_voices(m)))  # noqa: E731
            for item in _safely(produce, found.errors, f"provider {provider.name}"):
                if isinstance(item, RejectedFile):
                    found.errors[Path(item.path).name] = item.reason
                elif isinstance(item, Voice):
                    add(item, Path(item.source).name if item.source else f"provider {provider.name}")
                else:
                    found.errors[f"provider {provider.name}"] = f"discover_voices yielded {item!r}"
        # The user's aliases come first: a user voice may take an alias from a built-in preset.
        ordered = sorted(found.voices.items(), key=lambda item: item[0] in builtin)
        for key, voice in ordered:
            for alias in voice.aliases:
                if alias in found.voices or alias in found.aliases:
                    if key in builtin:
                        _LOGGER.debug("Built-in alias %s of %s is taken by a user voice", alias, voice.name)
                    else:
                        found.errors[str(voice.source)] = f"alias {alias!r} is already taken"
                    continue
                found.aliases[alias] = key
        for name, error in found.errors.items():
            _LOGGER.warning("Voice file %s skipped: %s", name, error)
        return found

    def _load_into(
        self, found: VoiceSet, path: Path, loader: Callable[[], Voice], add, origin: str | None = None
    ) -> None:
        origin = origin or path.name
        try:
            add(loader(), origin)
        except VoiceFileError as err:
            found.errors[origin] = str(err)
        except Exception as err:  # noqa: BLE001 - one bad file must never stop the others
            found.errors[origin] = f"{type(err).__name__}: {err}"

    def reload(self) -> VoiceChanges:
        """Re-scan; return what changed and remember the new set."""
        self._signature = folder_signature(self.folder)
        before = self.current.voices
        self.current = self.scan()
        after = self.current.voices
        return VoiceChanges(
            added=tuple(sorted(v.name for k, v in after.items() if k not in before)),
            removed=tuple(sorted(v.name for k, v in before.items() if k not in after)),
            changed=tuple(sorted(v.name for k, v in after.items() if k in before and before[k] != v)),
        )

    def changed_on_disk(self) -> bool:
        """True if the folder differs from the last scan."""
        return folder_signature(self.folder) != self._signature

    async def watch(self, interval: float) -> None:
        """Poll the folder forever; re-scan and notify listeners when it changes."""
        while True:
            await asyncio.sleep(interval)
            try:
                if not await asyncio.to_thread(self.changed_on_disk):
                    continue
                changes = await asyncio.to_thread(self.reload)
            except Exception:
                _LOGGER.exception("Re-scanning %s failed", self.folder)
                continue
            if changes:
                _LOGGER.info(
                    "Voices changed: added %s, removed %s, changed %s",
                    list(changes.added),
                    list(changes.removed),
                    list(changes.changed),
                )
                await self._notify(changes)

    async def rescan(self) -> VoiceChanges:
        """Re-read the folder now (off the event loop) and tell the listeners what changed, as the watcher would."""
        changes = await asyncio.to_thread(self.reload)
        if changes:
            await self._notify(changes)
        return changes

    async def _notify(self, changes: VoiceChanges) -> None:
        for listener in list(self.listeners):
            result = listener(changes)
            if asyncio.iscoroutine(result):
                await result

    # -- lookups ---------------------------------------------------------------
    def list(self) -> list[Voice]:
        """Every voice, sorted by name."""
        return sorted(self.current.voices.values(), key=lambda v: v.name.lower())

    @property
    def errors(self) -> dict[str, str]:
        """Files skipped in the last scan, with reasons."""
        return dict(self.current.errors)

    def get(self, name: str | None) -> Voice:
        """The voice called ``name`` (or one of its aliases); None means the default voice."""
        key = (name or self.default_voice).strip().lower()
        voice = self.current.voices.get(key) or self.current.voices.get(self.current.aliases.get(key, ""))
        if voice is None:
            if name is None or key == self.default_voice.lower():
                raise UnknownVoice(f"default voice {self.default_voice!r} does not exist", param="voice")
            shown = name if VOICE_NAME.match(name or "") else repr(name)[:70]
            raise UnknownVoice(f"voice {shown} does not exist; GET /v1/audio/voices lists them", param="voice")
        return voice


def _overrides(provider: Any, method: str) -> bool:
    """Whether ``provider`` has its own ``method`` rather than the base class's empty one."""
    from sesame_voice.api.provider import Provider

    return getattr(type(provider), method, None) is not getattr(Provider, method)


def _safely(produce: Callable[[], Iterable[Voice]], errors: dict[str, str], origin: str) -> list[Voice]:
    try:
        return list(produce())
    except Exception as err:  # noqa: BLE001 - a provider bug must not hide other voices
        errors[origin] = f"{type(err).__name__}: {err}"
        return []
