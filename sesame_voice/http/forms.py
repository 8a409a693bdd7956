"""Bounded multipart/form-data reading for every route that takes a form.

``read_form(request, limits, files=("file",))`` reads at most ``limits.max_parts`` parts, at most
``limits.max_field_bytes`` per text field and ``limits.max_file_bytes`` per file, and turns every
kind of malformed body (no boundary, broken part headers, odd field names, a truncated body) into
an ``InvalidRequest`` instead of a 500.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import BodyPartReader, web
from aiohttp.helpers import parse_mimetype
from aiohttp.http_exceptions import HttpProcessingError

from sesame_voice.api.errors import InvalidRequest

READ_CHUNK = 64 * 1024


class FormTooLarge(InvalidRequest):
    """A part (or the number of parts) is over its cap: HTTP 413."""

    code = "request_too_large"


@dataclass(frozen=True)
class FormLimits:
    """Caps on one multipart body; the defaults are ``MAX_FORM_PARTS`` and ``MAX_FORM_FIELD_BYTES``."""

    max_parts: int = 16
    max_field_bytes: int = 64 * 1024
    max_file_bytes: int = 25 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings, max_file_bytes: int | None = None) -> "FormLimits":
        return cls(
            max_parts=settings.max_form_parts,
            max_field_bytes=settings.max_form_field_bytes,
            max_file_bytes=max_file_bytes if max_file_bytes is not None else cls.max_file_bytes,
        )


@dataclass
class Form:
    """The text fields (every value, in order) and the files (name → (filename, bytes)) of a form."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        """The last value of a text field, or None."""
        values = self.fields.get(name)
        return values[-1] if values else None


async def _read_part(part, limit: int, what: str) -> bytes:
    data = bytearray()
    while chunk := await part.read_chunk(READ_CHUNK):
        data += chunk
        if len(data) > limit:
            raise FormTooLarge(
                f"{what} is larger than {limit} bytes",
                param=part.name,
                code="file_too_large" if what == "the file" else "field_too_large",
            )
    return bytes(data)


async def read_form(request: web.Request, limits: FormLimits, files: tuple[str, ...] = ("file",)) -> Form:
    """The parts of a ``multipart/form-data`` body, within ``limits``; InvalidRequest if malformed."""
    if request.content_type != "multipart/form-data":
        raise InvalidRequest(
            f"Content-Type must be multipart/form-data, got {request.content_type or 'none'}",
            code="unsupported_media_type",
        )
    if not parse_mimetype(request.headers.get("Content-Type", "")).parameters.get("boundary"):
        raise InvalidRequest("multipart/form-data needs a boundary parameter in Content-Type", code="invalid_form")
    form = Form()
    parts = 0
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            parts += 1
            if parts > limits.max_parts:
                raise FormTooLarge(f"the form has more than {limits.max_parts} parts", code="too_many_parts")
            name = part.name
            if not isinstance(part, BodyPartReader) or not name:
                continue  # nested multiparts and unnamed parts carry nothing a route reads
            if name in files:
                form.files[name] = (part.filename or "audio", await _read_part(part, limits.max_file_bytes, "the file"))
            else:
                raw = await _read_part(part, limits.max_field_bytes, f"field {name!r}")
                form.fields.setdefault(name.removesuffix("[]"), []).append(raw.decode("utf-8", "replace"))
    except InvalidRequest:
        raise
    except web.HTTPRequestEntityTooLarge:
        raise FormTooLarge(f"the request body is larger than {request.client_max_size} bytes") from None
    except (HttpProcessingError, ValueError, AssertionError, LookupError, TypeError, RuntimeError) as err:
        raise InvalidRequest(f"the multipart form is malformed: {type(err).__name__}", code="invalid_form") from None
    return form
