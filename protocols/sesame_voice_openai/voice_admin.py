"""``POST /v1/audio/voices`` and ``DELETE /v1/audio/voices/{name}``: make and remove cloned voices.

A created voice is written to the user's voices folder exactly as a dropped-in clone:
``NAME.wav`` (mono 16-bit, peak-normalised, leading and trailing silence trimmed) and ``NAME.txt``
(its transcript), plus ``NAME.description`` when a description was given. The folder is then
re-scanned, so the providers' clip limits, fallbacks and hot reload apply as for files.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from sesame_voice import InvalidRequest, SesameVoiceError, UnknownVoice
from sesame_voice.audio import decode_file
from sesame_voice.voices.library import (
    CLIP_SUFFIX,
    DESCRIPTION_SUFFIX,
    PRESET_SUFFIXES,
    TRANSCRIPT_SUFFIX,
    VoiceFileError,
    clip_providers,
)

from .errors import error_response, from_exception

NEW_VOICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
"""Names a client may create: no dots or separators, so a name never leaves the voices folder."""
MAX_PARTS = 8
"""Multipart parts read before the form is refused (four fields are known)."""
MAX_FIELD_BYTES = 16 * 1024
MAX_TRANSCRIPT_CHARS = 4000
MAX_DESCRIPTION_CHARS = 500
MAX_CLIP_MB = 25
"""Largest clip upload (``plugins: openai: max_upload_mb`` changes it, as for transcriptions)."""
CLIP_RATE = 24000
"""Stored clips are resampled to this rate (CSM's; any provider resamples from it)."""
PEAK = 0.89
"""Clips are scaled so their loudest sample is at -1 dBFS."""
SILENCE = 10 ** (-50 / 20)
"""Leading and trailing samples quieter than -50 dBFS are trimmed (keeping 0.1 s of margin)."""
SILENT_RMS = 1e-4


class VoiceConflict(InvalidRequest):
    """The voice exists already, or cannot be deleted (a built-in or a provider's voice)."""

    code = "voice_exists"


@dataclass
class VoiceForm:
    name: str
    transcript: str
    description: str
    clip: bytes


def voice_object(server, voice) -> dict:
    """A voice as ``GET /v1/audio/voices`` lists it."""
    return {
        "id": voice.name,
        "name": voice.name,
        "object": "voice",
        "description": voice.description,
        "provider": voice.provider,
        "fallbacks": [f["provider"] for f in voice.fallbacks],
        "aliases": list(voice.aliases),
        "languages": list(voice.languages),
        "default": voice.name.lower() == server.settings.default_voice.lower(),
        "deletable": is_user_clone(server, voice),
    }


def is_user_clone(server, voice) -> bool:
    """Whether ``voice`` is a clip clone in the user's voices folder (which the API may delete)."""
    source = voice.source
    if source is None or Path(source).suffix.lower() != CLIP_SUFFIX:
        return False
    try:
        return Path(source).resolve().parent == server.voices.folder.resolve()
    except OSError:
        return False


def check_name(name: str) -> str:
    if not NEW_VOICE_NAME.match(name):
        raise InvalidRequest(
            "name must be 1-64 letters, digits, '_' or '-', starting with a letter or digit",
            param="name",
            code="invalid_voice_name",
        )
    return name


def _max_clip_bytes(server) -> int:
    return int(float(server.settings.plugin_config("openai").get("max_upload_mb", MAX_CLIP_MB)) * 1024 * 1024)


async def _read_part(part, limit: int, what: str) -> bytes:
    data = bytearray()
    while chunk := await part.read_chunk(64 * 1024):
        data += chunk
        if len(data) > limit:
            raise InvalidRequest(f"{what} is larger than {limit} bytes", param=part.name, code="request_too_large")
    return bytes(data)


async def read_voice_form(request: web.Request, max_clip: int) -> VoiceForm:
    """The validated form: at most ``MAX_PARTS`` parts, ``max_clip`` bytes of clip, small text fields."""
    if request.content_type != "multipart/form-data":
        raise InvalidRequest(
            f"Content-Type must be multipart/form-data, got {request.content_type or 'none'}",
            code="unsupported_media_type",
        )
    if request.content_length is not None and request.content_length > max_clip + MAX_PARTS * MAX_FIELD_BYTES:
        raise InvalidRequest(
            f"the upload is {request.content_length} bytes; the limit is {max_clip}",
            param="file",
            code="request_too_large",
        )
    fields: dict[str, str] = {}
    clip: bytes | None = None
    try:
        reader = await request.multipart()
        parts = 0
        while (part := await reader.next()) is not None:
            parts += 1
            if parts > MAX_PARTS:
                raise InvalidRequest(f"the form has more than {MAX_PARTS} parts", code="invalid_form")
            if not hasattr(part, "read_chunk"):
                raise InvalidRequest("nested multipart forms are not accepted", code="invalid_form")
            if part.name == "file":
                clip = await _read_part(part, max_clip, "the file")
            elif part.name in ("name", "transcript", "description"):
                raw = await _read_part(part, MAX_FIELD_BYTES, f"field {part.name}")
                fields[part.name] = raw.decode("utf-8", "replace").strip()
            else:
                await _read_part(part, MAX_FIELD_BYTES, "an unknown field")  # read and ignore, bounded
    except (HttpProcessingError, ValueError, AssertionError, LookupError, TypeError, RuntimeError, UnicodeError) as err:
        if isinstance(err, InvalidRequest):
            raise
        raise InvalidRequest(f"the multipart form is malformed: {err}", code="invalid_form") from None
    for required in ("name", "transcript"):
        if not fields.get(required):
            raise InvalidRequest(
                f"missing required parameter '{required}'", param=required, code="missing_required_parameter"
            )
    if clip is None:
        raise InvalidRequest("missing required parameter 'file'", param="file", code="missing_required_parameter")
    if len(fields["transcript"]) > MAX_TRANSCRIPT_CHARS:
        raise InvalidRequest(f"transcript is longer than {MAX_TRANSCRIPT_CHARS} characters", param="transcript")
    description = fields.get("description", "")
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise InvalidRequest(f"description is longer than {MAX_DESCRIPTION_CHARS} characters", param="description")
    return VoiceForm(check_name(fields["name"]), fields["transcript"], description, clip)


def _cloning_limit(server) -> float:
    """The longest clip any cloning provider takes (decoding stops a little after it)."""
    limits = [
        p.clip_policy.max_seconds
        for p in server.providers.values()
        if getattr(p, "clip_policy", None) is not None and p.clip_policy.clones
    ]
    finite = [limit for limit in limits if np.isfinite(limit)]
    return (max(finite) if finite else 600.0) + 1.0


def _limits_text(server) -> str:
    parts = [
        f"{name} accepts {p.clip_policy.min_seconds:g}–{p.clip_policy.max_seconds:g} s"
        for name, p in server.providers.items()
        if getattr(p, "clip_policy", None) is not None and p.clip_policy.clones
    ]
    return "; ".join(parts) or "no installed provider clones speaker clips"


def prepare_clip(server, data: bytes) -> tuple[np.ndarray, list[str]]:
    """Decode, trim and normalise a clip (blocking: run in a thread); the providers that would serve it."""
    limit = _cloning_limit(server)
    try:
        samples, _ = decode_file(data, max_seconds=limit, rate=CLIP_RATE)
    except InvalidRequest as err:
        if "longer than" in str(err):
            raise InvalidRequest(
                f"the clip is too long; {_limits_text(server)}", param="file", code="clip_out_of_range"
            ) from None
        raise
    loud = np.flatnonzero(np.abs(samples) > SILENCE)
    if loud.size == 0 or float(np.sqrt(np.mean(np.square(samples)))) < SILENT_RMS:
        raise InvalidRequest("the clip is silent", param="file", code="silent_audio")
    margin = int(0.1 * CLIP_RATE)
    samples = samples[max(0, loud[0] - margin) : loud[-1] + 1 + margin]
    samples = (samples * (PEAK / float(np.max(np.abs(samples))))).astype(np.float32)
    try:
        order = clip_providers(server.providers, len(samples) / CLIP_RATE)
    except VoiceFileError as err:
        raise InvalidRequest(str(err), param="file", code="clip_out_of_range") from None
    return samples, order


def _taken(folder: Path, name: str) -> bool:
    """Whether any voice file of this name (any case) is in the folder."""
    suffixes = {CLIP_SUFFIX, TRANSCRIPT_SUFFIX, DESCRIPTION_SUFFIX, *PRESET_SUFFIXES}
    try:
        return any(p.stem.lower() == name.lower() and p.suffix.lower() in suffixes for p in folder.iterdir())
    except FileNotFoundError:
        return False


def write_clone(folder: Path, form: VoiceForm, samples: np.ndarray) -> Path:
    """Write the transcript (and description), then the clip, atomically (blocking)."""
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    if _taken(folder, form.name):
        raise VoiceConflict(f"a voice file named {form.name} is already in the voices folder", param="name")
    (folder / f"{form.name}{TRANSCRIPT_SUFFIX}").write_text(form.transcript + "\n", encoding="utf-8")
    if form.description:
        (folder / f"{form.name}{DESCRIPTION_SUFFIX}").write_text(form.description + "\n", encoding="utf-8")
    handle, temporary = tempfile.mkstemp(prefix=f".{form.name}.", suffix=".part", dir=folder)
    os.close(handle)
    try:
        sf.write(temporary, samples, CLIP_RATE, subtype="PCM_16", format="WAV")
        os.replace(temporary, folder / f"{form.name}{CLIP_SUFFIX}")
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return folder / f"{form.name}{CLIP_SUFFIX}"


def remove_clone(clip: Path) -> None:
    for suffix in (CLIP_SUFFIX, TRANSCRIPT_SUFFIX, DESCRIPTION_SUFFIX):
        clip.with_suffix(suffix).unlink(missing_ok=True)


async def rescan(server) -> None:
    """Re-read the voices folder now and tell the listeners (as the watcher would)."""
    lock = server.plugin_state("openai").setdefault("rescan_lock", asyncio.Lock())
    async with lock:
        await server.voices.rescan()


def _lookup(server, name: str):
    try:
        return server.voices.get(name)
    except UnknownVoice:
        return None


async def create_voice(request: web.Request, server) -> web.Response:
    """Handle ``POST /v1/audio/voices``: 201 with the new voice."""
    try:
        form = await read_voice_form(request, _max_clip_bytes(server))
        if _lookup(server, form.name) is not None:
            raise VoiceConflict(
                f"voice {form.name} already exists; delete it first or choose another name", param="name"
            )
        samples, _ = await asyncio.to_thread(prepare_clip, server, form.clip)
        form.clip = b""
        await asyncio.to_thread(write_clone, server.voices.folder, form, samples)
        await rescan(server)
    except VoiceConflict as err:
        return error_response(409, str(err), param=err.param, code=err.code)
    except InvalidRequest as err:
        status = {"unsupported_media_type": 415, "request_too_large": 413}.get(err.code, 400)
        return error_response(status, str(err), param=err.param, code=err.code)
    except SesameVoiceError as err:
        return from_exception(err)
    voice = _lookup(server, form.name)
    if voice is None:  # the scan refused what was written: say why and leave nothing behind
        clip = server.voices.folder / f"{form.name}{CLIP_SUFFIX}"
        reason = server.voices.errors.get(clip.name, "the voices folder did not accept it")
        await asyncio.to_thread(remove_clone, clip)
        await rescan(server)
        return error_response(400, f"the clip was not accepted: {reason}", param="file", code="clip_rejected")
    return web.json_response(voice_object(server, voice), status=201)


async def delete_voice(request: web.Request, server) -> web.Response:
    """Handle ``DELETE /v1/audio/voices/{name}``: 204, or 409 for voices not in the user's folder."""
    name = request.match_info["name"]
    voice = _lookup(server, name) if NEW_VOICE_NAME.match(name) else None
    if voice is None:
        shown = name if NEW_VOICE_NAME.match(name) else repr(name)[:70]
        return error_response(404, f"voice {shown} does not exist", param="name", code="voice_not_found")
    if not is_user_clone(server, voice):
        origin = (
            "a preset or a provider's voice"
            if voice.source is None or Path(voice.source).suffix != CLIP_SUFFIX
            else "not a clone in the voices folder"
        )
        return error_response(
            409,
            f"voice {voice.name} is {origin}; only clones in the voices folder can be deleted",
            param="name",
            code="voice_not_deletable",
        )
    await asyncio.to_thread(remove_clone, Path(voice.source))
    await rescan(server)
    return web.Response(status=204)
