"""Declared voice parameters: each provider says which keys its voices take, of what type and range.

A provider lists them in ``Provider.voice_params`` (name → :class:`ParamSpec`). The core checks
voice files against them when it loads the voices folder, and the ``sampling`` overrides of every
request before synthesis starts, so a provider never sees a value outside what it declared.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_KIND_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}


class ParamError(ValueError):
    """A voice parameter does not fit its :class:`ParamSpec` (or is not declared); ``name`` is its key."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


@dataclass(frozen=True)
class ParamSpec:
    """Type and range of one voice parameter.

    ``kind`` is ``float``, ``int``, ``str``, ``bool`` or a tuple of them. A ``float`` parameter takes
    any finite JSON/YAML number; an ``int`` one takes integers (``50.0`` counts as 50); ``bool`` is
    never taken for a number. ``minimum``/``maximum`` bound numbers (inclusive), ``max_length``
    strings. ``optional``: ``null`` is accepted and means the provider's default.
    """

    kind: type | tuple[type, ...] = float
    minimum: float | None = None
    maximum: float | None = None
    optional: bool = False
    max_length: int = 1000
    description: str = ""

    @property
    def kinds(self) -> tuple[type, ...]:
        return self.kind if isinstance(self.kind, tuple) else (self.kind,)

    def expected(self) -> str:
        """What the parameter takes, in words: ``a number between 0 and 2``."""
        words = " or ".join(_KIND_NAMES.get(kind, kind.__name__) for kind in self.kinds)
        if (int in self.kinds or float in self.kinds) and (self.minimum is not None or self.maximum is not None):
            if self.minimum is not None and self.maximum is not None:
                words += f" between {self.minimum:g} and {self.maximum:g}"
            elif self.minimum is not None:
                words += f" of at least {self.minimum:g}"
            else:
                words += f" of at most {self.maximum:g}"
        return words + (" (or null)" if self.optional else "")

    def check(self, name: str, value: Any) -> Any:
        """``value`` in its canonical type (``50.0`` → 50 for an int); ParamError naming ``name`` if it misfits."""
        if value is None:
            if self.optional:
                return None
            raise ParamError(name, f"{name} must be {self.expected()}, got null")
        kinds = self.kinds
        if isinstance(value, bool):
            if bool in kinds:
                return value
        elif isinstance(value, (int, float)) and (int in kinds or float in kinds):
            if not math.isfinite(value):
                raise ParamError(name, f"{name} must be {self.expected()}, got {value}")
            if float not in kinds:
                if value != int(value):
                    raise ParamError(name, f"{name} must be {self.expected()}, got {value:g}")
                value = int(value)
            elif not (isinstance(value, int) and int in kinds):
                value = float(value)
            if (self.minimum is not None and value < self.minimum) or (
                self.maximum is not None and value > self.maximum
            ):
                raise ParamError(name, f"{name} must be {self.expected()}, got {value:g}")
            return value
        elif isinstance(value, str) and str in kinds:
            if len(value) > self.max_length:
                raise ParamError(name, f"{name} must be at most {self.max_length} characters, got {len(value)}")
            return value
        shown = repr(value) if isinstance(value, (str, int, float, bool)) else type(value).__name__
        raise ParamError(name, f"{name} must be {self.expected()}, got {shown[:60]}")


def unknown_param(name: str, specs: Mapping[str, ParamSpec], owner: str) -> ParamError:
    """The error for a key ``owner`` does not declare, with the closest declared key as a hint."""
    close = difflib.get_close_matches(str(name), list(specs), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ParamError(
        str(name), f"unknown parameter {str(name)!r}{hint}; {owner} takes {', '.join(sorted(specs)) or 'none'}"
    )


def checked_params(specs: Mapping[str, ParamSpec], values: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """``values`` in canonical types; ParamError for the first unknown key or misfit value."""
    result = {}
    for name, value in values.items():
        spec = specs.get(name)
        if spec is None:
            raise unknown_param(name, specs, owner)
        result[name] = spec.check(name, value)
    return result
