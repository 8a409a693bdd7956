"""Settings from environment variables, a ``.env`` file and an optional YAML config file."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

_LOGGER = logging.getLogger(__name__)
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
T = TypeVar("T")


class ConfigError(ValueError):
    """A setting has a bad value; the message names the setting."""


APP_NAME = "sesame-voice"
DEFAULT_CACHE_DIR = Path("~/.cache/sesame-voice")
OLD_CACHE_DIR = Path("~/.cache/sesame-tts")
"""Where releases before 0.2 kept the cache; moved to DEFAULT_CACHE_DIR on first start."""
RESPONSE_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
"""Audio formats the server can answer in (the OpenAI speech API's ``response_format`` values)."""


def user_voices_dir() -> Path:
    """The per-user voices folder: ``~/.config/sesame-voice/voices`` on Linux (``$XDG_CONFIG_HOME``),
    ``~/Library/Application Support/sesame-voice/voices`` on macOS, ``%APPDATA%`` on Windows."""
    from platformdirs import user_config_path

    return user_config_path(APP_NAME, appauthor=False) / "voices"


def _default_voices_dir() -> Path:
    """``./voices`` where the server starts, if that folder exists; else the per-user folder."""
    local = Path.cwd() / "voices"
    return local if local.is_dir() else user_voices_dir()


@dataclass
class Settings:
    """Everything the server is configured with. Env var names are the field names upper-cased."""

    host: str = "127.0.0.1"
    """The HTTP API's address: this machine only by default; ``0.0.0.0`` (with API_KEY) to serve the LAN."""
    port: int = 8880
    cache_dir: Path = DEFAULT_CACHE_DIR.expanduser()
    voices_dir: Path = field(default_factory=_default_voices_dir)
    default_voice: str = "conversational"
    default_format: str = "mp3"
    default_stt: str = ""
    """Speech-to-text provider (or model name) for requests that name none, and for OpenAI's names
    (``whisper-1``…); empty: the built-in ``whisper``."""
    max_input_length: int = 4096
    log_level: str = "info"
    log_file: str = "server.log"
    """Log file, rotated; a relative name lives in CACHE_DIR; empty disables the file."""
    log_max_bytes: int = 10 * 1024 * 1024
    log_backups: int = 5
    pid_file: str = "sesame-voice.pid"
    """PID file written by ``serve``; a relative name lives in CACHE_DIR; empty disables it."""
    shutdown_grace: float = 30.0
    """Seconds that running requests get to finish after SIGTERM/SIGINT."""
    api_key: str | None = None
    mp3_bitrate: int = 64
    opus_bitrate: int = 32
    aac_bitrate: int = 64
    preload: bool = True
    """Load every provider at start-up (in its worker thread) instead of on first use."""
    max_queue: int = 16
    """Requests waiting per provider before new ones get an 'overloaded' error."""
    max_queued_chunks: int = 8
    """Audio chunks of one request a provider runs ahead of a slow client before it waits for it."""
    max_form_parts: int = 16
    """Parts one multipart/form-data body may have (413 ``too_many_parts`` beyond)."""
    max_form_field_bytes: int = 64 * 1024
    """Largest text field of a multipart form (files have their own caps)."""
    voices_poll_interval: float = 1.0
    disabled_plugins: tuple[str, ...] = ()
    zeroconf_enabled: bool = True
    zeroconf_name: str = "sesame-voice"
    zeroconf_interfaces: tuple[str, ...] = ()
    """Addresses to advertise on; empty means every interface."""
    metrics_instance: str = ""
    """The ``instance`` label on every metric at /metrics; empty means HOSTNAME:PORT."""
    plugins: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Free-form settings for each plugin, from the YAML config's ``plugins:`` table."""
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    """The environment the settings were read from (``.env`` included); plugins read theirs here."""

    def cache_path(self, name: str) -> Path | None:
        """``name`` resolved against CACHE_DIR (absolute names kept); None for an empty name."""
        return (self.cache_dir / Path(name).expanduser()) if name else None

    def plugin_config(self, name: str) -> dict[str, Any]:
        """The YAML settings of one plugin (empty if none)."""
        return dict(self.plugins.get(name) or {})

    def plugin_settings(
        self, name: str, schema: type[T], env: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
    ) -> T:
        """Plugin ``name``'s settings as an instance of the dataclass ``schema``.

        Values come from (lowest first) the dataclass defaults, the config file's
        ``plugins: {name: {...}}`` table, then the environment variables that ``env`` maps field
        names to (e.g. ``{"uri": "WYOMING_URI"}``); each is converted with ``coerce``. An unknown key
        in the table, or a value of the wrong type, raises ConfigError naming ``plugins.NAME.KEY``
        or the variable. ``environ`` replaces the environment the settings were read from.
        """
        environ = self.environ if environ is None else environ
        fields = {f.name: f for f in dataclasses.fields(schema)}
        values: dict[str, Any] = {}
        for key, raw in self.plugin_config(name).items():
            if key not in fields:
                raise ConfigError(f"plugins.{name}: unknown setting {key!r} (known: {', '.join(fields)})")
            values[key] = coerce(raw, str(fields[key].type), f"plugins.{name}.{key}")
        for key, variable in (env or {}).items():
            if variable in environ:
                values[key] = coerce(environ[variable], str(fields[key].type), variable)
        return schema(**values)

    def validate(self) -> "Settings":
        """Raise ConfigError naming the first bad setting."""
        if not 0 <= self.port < 65536:
            raise ConfigError(f"PORT must be 0-65535 (0 picks a free port), got {self.port}")
        if self.default_format not in RESPONSE_FORMATS:
            raise ConfigError(
                f"DEFAULT_FORMAT must be one of {', '.join(RESPONSE_FORMATS)}, got {self.default_format!r}"
            )
        if self.max_input_length < 1:
            raise ConfigError(f"MAX_INPUT_LENGTH must be positive, got {self.max_input_length}")
        if self.log_level.lower() not in LOG_LEVELS:
            raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}")
        for name in ("mp3_bitrate", "opus_bitrate", "aac_bitrate"):
            if not 6 <= getattr(self, name) <= 320:
                raise ConfigError(f"{name.upper()} must be 6-320 kbit/s, got {getattr(self, name)}")
        if self.log_max_bytes < 1024 or self.log_backups < 0:
            raise ConfigError("LOG_MAX_BYTES must be at least 1024 and LOG_BACKUPS at least 0")
        if self.shutdown_grace < 0:
            raise ConfigError(f"SHUTDOWN_GRACE must be 0 or more seconds, got {self.shutdown_grace}")
        if self.max_queue < 1:
            raise ConfigError(f"MAX_QUEUE must be positive, got {self.max_queue}")
        if self.max_queued_chunks < 1:
            raise ConfigError(f"MAX_QUEUED_CHUNKS must be positive, got {self.max_queued_chunks}")
        if self.voices_poll_interval <= 0:
            raise ConfigError(f"VOICES_POLL_INTERVAL must be positive, got {self.voices_poll_interval}")
        for address in self.zeroconf_interfaces:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ConfigError(f"ZEROCONF_INTERFACES must be IP addresses, got {address!r}") from None
        return self


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_NOT_FROM_ENV = ("plugins", "environ")


TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def coerce(raw: Any, kind: str, name: str) -> Any:
    """Turn an env string or YAML value into ``kind`` (a dataclass field's annotation, as a string).

    The one conversion every setting goes through, the core's and each plugin's: ``int``,
    ``float``, ``bool`` (1/true/yes/on, 0/false/no/off), ``Path``, ``tuple[str, ...]`` (a list or a
    comma-separated string), ``dict`` (a mapping), ``X | None`` (empty means None) and ``str``.
    Raises ConfigError naming ``name``.
    """
    try:
        if kind.endswith("| None"):
            if raw is None or raw == "":
                return None
            kind = kind.split("|")[0].strip()
        if kind == "int":
            if isinstance(raw, bool):
                raise ValueError(raw)
            return int(raw)
        if kind == "float":
            if isinstance(raw, bool):
                raise ValueError(raw)
            return float(raw)
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            value = str(raw).strip().lower()
            if value in TRUE_WORDS:
                return True
            if value in FALSE_WORDS:
                return False
            raise ValueError(raw)
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
        if isinstance(raw, (Mapping, list)):
            raise ValueError(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} has an invalid value {raw!r} (expected {kind})") from None


def _convert(name: str, raw: Any) -> Any:
    return coerce(raw, _FIELDS[name].type, name.upper())


def setting_names() -> list[str]:
    """The environment variable of every core setting (HOST, PORT, …)."""
    return [name.upper() for name in _FIELDS if name not in _NOT_FROM_ENV]


def _read_dotenv(path: Path) -> dict[str, str]:
    from dotenv import dotenv_values

    try:
        values = dotenv_values(path)
    except OSError as err:  # e.g. a service's secrets file that systemd already read as root
        _LOGGER.debug("Not reading %s: %s", path, err)
        return {}
    return {k: v for k, v in values.items() if v is not None}


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
            if name not in _FIELDS or name in _NOT_FROM_ENV[1:]:
                raise ConfigError(f"config file {config_file}: unknown setting {key!r}")
            values[name] = _convert(name, raw)
    layered: dict[str, str] = {}
    if dotenv_file is not None and Path(dotenv_file).is_file():
        layered.update(_read_dotenv(Path(dotenv_file)))
    layered.update(env)
    for name in _FIELDS:
        if name in _NOT_FROM_ENV:
            continue
        if name.upper() in layered:
            values[name] = _convert(name, layered[name.upper()])
    for name, raw in overrides.items():
        if raw is not None:
            values[name] = raw if not isinstance(raw, str) else _convert(name, raw)
    return Settings(**values, environ=layered).validate()
