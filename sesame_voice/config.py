"""Settings from environment variables, a ``.env`` file and an optional YAML config file."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from .types import RESPONSE_FORMATS

_LOGGER = logging.getLogger(__name__)
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class ConfigError(ValueError):
    """A setting has a bad value; the message names the setting."""


def _default_voices_dir() -> Path:
    return Path.cwd() / "voices"


@dataclass
class Settings:
    """Everything the server is configured with. Env var names are the field names upper-cased."""

    host: str = "0.0.0.0"
    port: int = 8880
    model_id: str = "sesame/csm-1b"
    cache_dir: Path = Path("~/.cache/sesame-tts").expanduser()
    voices_dir: Path = field(default_factory=_default_voices_dir)
    default_voice: str = "conversational"
    default_format: str = "mp3"
    max_input_length: int = 4096
    log_level: str = "info"
    api_key: str | None = None
    mp3_bitrate: int = 64
    opus_bitrate: int = 32
    aac_bitrate: int = 64
    preload: bool = True
    """Load every provider at start-up (in its worker thread) instead of on first use."""
    max_queue: int = 16
    """Requests waiting per provider before new ones get an 'overloaded' error."""
    voices_poll_interval: float = 1.0
    disabled_plugins: tuple[str, ...] = ()
    wyoming_uri: str = "tcp://0.0.0.0:10200"
    wyoming_enabled: bool = True
    zeroconf_enabled: bool = True
    zeroconf_name: str = "sesame-voice"
    zeroconf_interfaces: tuple[str, ...] = ()
    """Addresses to advertise on; empty means every interface."""
    plugins: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Free-form settings for each plugin, from the YAML config's ``plugins:`` table."""

    def plugin_config(self, name: str) -> dict[str, Any]:
        """The YAML settings of one plugin (empty if none)."""
        return dict(self.plugins.get(name) or {})

    def validate(self) -> "Settings":
        """Raise ConfigError naming the first bad setting."""
        if not 0 <= self.port < 65536:
            raise ConfigError(f"PORT must be 0-65535 (0 picks a free port), got {self.port}")
        if self.default_format not in RESPONSE_FORMATS:
            raise ConfigError(f"DEFAULT_FORMAT must be one of {', '.join(RESPONSE_FORMATS)}, got {self.default_format!r}")
        if self.max_input_length < 1:
            raise ConfigError(f"MAX_INPUT_LENGTH must be positive, got {self.max_input_length}")
        if self.log_level.lower() not in LOG_LEVELS:
            raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}")
        for name in ("mp3_bitrate", "opus_bitrate", "aac_bitrate"):
            if not 6 <= getattr(self, name) <= 320:
                raise ConfigError(f"{name.upper()} must be 6-320 kbit/s, got {getattr(self, name)}")
        if self.max_queue < 1:
            raise ConfigError(f"MAX_QUEUE must be positive, got {self.max_queue}")
        if self.voices_poll_interval <= 0:
            raise ConfigError(f"VOICES_POLL_INTERVAL must be positive, got {self.voices_poll_interval}")
        if not self.wyoming_uri.startswith("tcp://"):
            raise ConfigError(f"WYOMING_URI must look like tcp://HOST:PORT, got {self.wyoming_uri!r}")
        for address in self.zeroconf_interfaces:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ConfigError(f"ZEROCONF_INTERFACES must be IP addresses, got {address!r}") from None
        return self


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _parse_bool(raw: Any) -> bool:
    """``true/yes/on/1`` or ``false/no/off/0`` (any case), or a bool; ValueError otherwise."""
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _convert(name: str, raw: Any) -> Any:
    """Turn a raw env/YAML value into the field's type, or raise ConfigError naming it."""
    kind = _FIELDS[name].type
    env_name = name.upper()
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            return _parse_bool(raw)
        if kind == "Path":
            return Path(str(raw)).expanduser()
        if kind.startswith("tuple"):
            if isinstance(raw, (list, tuple)):
                return tuple(str(item) for item in raw)
            return tuple(item.strip() for item in str(raw).split(",") if item.strip())
        if kind.startswith("dict"):
            if not isinstance(raw, Mapping):
                raise ValueError(raw)
            return {str(k): dict(v or {}) for k, v in raw.items()}
        if kind == "str | None":
            return str(raw) if raw not in (None, "") else None
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{env_name} has an invalid value {raw!r} (expected {kind})") from None


def _read_dotenv(path: Path) -> dict[str, str]:
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def load_settings(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    dotenv_file: Path | None = Path(".env"),
    **overrides: Any,
) -> Settings:
    """Settings from (lowest first) defaults, YAML config, ``.env``, environment, ``overrides``."""
    env = dict(os.environ if env is None else env)
    values: dict[str, Any] = {}
    config_file = config_file or (Path(env["SESAME_CONFIG"]) if env.get("SESAME_CONFIG") else None)
    if config_file is not None:
        try:
            data = yaml.safe_load(Path(config_file).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"config file {config_file}: {err}") from None
        if not isinstance(data, Mapping):
            raise ConfigError(f"config file {config_file}: expected a mapping at the top level")
        for key, raw in data.items():
            name = str(key).lower()
            if name not in _FIELDS:
                raise ConfigError(f"config file {config_file}: unknown setting {key!r}")
            values[name] = _convert(name, raw)
    layered: dict[str, str] = {}
    if dotenv_file is not None and Path(dotenv_file).is_file():
        layered.update(_read_dotenv(Path(dotenv_file)))
    layered.update(env)
    for name in _FIELDS:
        if name == "plugins":
            continue
        if name.upper() in layered:
            values[name] = _convert(name, layered[name.upper()])
    for name, raw in overrides.items():
        if raw is not None:
            values[name] = raw if not isinstance(raw, str) else _convert(name, raw)
    return Settings(**values).validate()


def plugin_options(cls: type, settings: Settings, name: str, env_names: Mapping[str, str] | None = None,
                   env: Mapping[str, str] | None = None) -> Any:
    """A plugin's options dataclass ``cls`` from ``settings.plugin_config(name)`` and its env vars.

    ``env_names`` maps a field to the env var that overrides it (e.g. ``{"model": "STT_MODEL"}``).
    Unknown keys and values that do not fit a field's type raise ConfigError naming them.
    """
    env = os.environ if env is None else env
    env_names = env_names or {}
    raw: dict[str, Any] = settings.plugin_config(name)
    for key, var in env_names.items():
        if env.get(var):
            raw[key] = env[var]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in fields:
            raise ConfigError(f"plugins.{name}: unknown setting {key!r} (known: {', '.join(fields)})")
        declared = fields[key].type
        kind = declared if isinstance(declared, str) else getattr(declared, "__name__", str(declared))
        try:
            values[key] = _option_value(kind, value)
        except (TypeError, ValueError):
            var = f" ({env_names[key]})" if key in env_names else ""
            raise ConfigError(f"plugins.{name}: {key}{var} has an invalid value {value!r} (expected {kind})") from None
    return cls(**values)


def _option_value(kind: str, value: Any) -> Any:
    """``value`` converted to a field of type ``kind`` (str, int, float, bool, each optionally ``| None``)."""
    if value is None or (value == "" and kind.endswith("| None")):
        if kind.endswith("| None"):
            return None
        raise ValueError(value)
    base = kind.split("|")[0].strip()
    if base == "str":
        return str(value)
    if base == "bool":
        return _parse_bool(value)
    if base == "int":
        return int(value)
    if base == "float":
        return float(value)
    return value
