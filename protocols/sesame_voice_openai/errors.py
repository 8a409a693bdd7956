"""OpenAI-shaped error responses: the core's HTTP error shape, which is OpenAI's."""

from __future__ import annotations

from sesame_voice.http.routes import error_from_exception as from_exception
from sesame_voice.http.routes import error_response

__all__ = ["error_response", "from_exception"]
