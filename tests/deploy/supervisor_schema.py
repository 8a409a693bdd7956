"""The Home Assistant Supervisor's rules for an add-on repository, vendored for the tests.

Source: https://github.com/home-assistant/supervisor (commit 090ef31ec, 2026), files
supervisor/apps/validate.py (the add-on config, build and translation schemas and the checks that
run before them), supervisor/apps/options.py (the option types and how options are checked
against them), supervisor/apps/const.py, supervisor/const.py, supervisor/validate.py and
supervisor/store/validate.py (repository.yaml). Licence: Apache-2.0, (c) the Home Assistant
authors. Only the rules an add-on like ours can meet are kept; changes: enums are inlined as
value lists, ``version_tag`` (AwesomeVersion, which accepts nearly anything) is a non-empty
string without spaces, ``docker_image`` (unused: we set no ``image``) and ``device`` options
(need the host's hardware) are left out, and log-only deprecation warnings are dropped.
"""

from __future__ import annotations

import re
from typing import Any

import voluptuous as vol

# supervisor/const.py
ARCH_ALL_COMPAT = ["aarch64", "amd64", "armhf", "armv7", "i386"]
ROLE_ALL = ["default", "homeassistant", "backup", "manager", "admin"]
STARTUP = ["initialize", "system", "services", "application", "once"]
BOOT_CONFIG = ["auto", "manual", "manual_only"]
STAGE = ["stable", "experimental", "deprecated"]
INGRESS_DYNAMIC_PORT_MIN = 62000
INGRESS_DYNAMIC_PORT_MAX = 65500
# supervisor/apps/const.py
BACKUP_MODES = ["hot", "cold"]
MAPPING_TYPES = [
    "data",
    "config",
    "ssl",
    "local_apps",
    "backup",
    "share",
    "media",
    "homeassistant_config",
    "all_app_configs",
    "app_config",
    "addons",
    "all_addon_configs",
    "addon_config",
]
RE_SLUG = r"[-_.A-Za-z0-9]+"

# supervisor/validate.py
network_port = vol.All(vol.Coerce(int), vol.Range(min=1, max=65535))
docker_port = vol.All(str, vol.Match(r"^\d+(?:/tcp|/udp)?$"))
docker_ports = vol.Schema({docker_port: vol.Maybe(network_port)})
docker_ports_description = vol.Schema({docker_port: str})
version_tag = vol.All(vol.Coerce(str), vol.Match(r"^\S+$"))
RE_REPOSITORY = re.compile(r"^(?P<url>[^#]+)(?:#(?P<branch>[\w\-./]+))?$")

# supervisor/apps/options.py
RE_SCHEMA_ELEMENT = re.compile(
    r"^(?:"
    r"|bool"
    r"|email"
    r"|url"
    r"|port"
    r"|device(?:\((?P<filter>subsystem=[a-z]+)\))?"
    r"|str(?:\((?P<s_min>\d+)?,(?P<s_max>\d+)?\))?"
    r"|password(?:\((?P<p_min>\d+)?,(?P<p_max>\d+)?\))?"
    r"|int(?:\((?P<i_min>-?\d+)?,(?P<i_max>-?\d+)?\))?"
    r"|float(?:\((?P<f_min>-?\d*\.?\d+)?,(?P<f_max>-?\d*\.?\d+)?\))?"
    r"|match\((?P<match>.*)\)"
    r"|list\((?P<list>.+)\)"
    r")\??$"
)
_SCHEMA_LENGTH_PARTS = ("i_min", "i_max", "f_min", "f_max", "s_min", "s_max", "p_min", "p_max")

# supervisor/apps/validate.py
RE_VOLUME = re.compile(
    r"^(data|config|ssl|local_apps|addons|backup|share|media|homeassistant_config|all_app_configs"
    r"|all_addon_configs|app_config|addon_config)(?::(rw|ro))?$"
)
RE_SERVICE = re.compile(r"^(?P<service>mqtt|mysql):(?P<rights>provide|want|need)$")
RE_DOCKER_IMAGE_BUILD = re.compile(r"^([a-zA-Z\-\.:\d{}]+/)*?([\-\w{}]+)/([\-\w{}]+)(:[\.\-\w{}]+)?$")
SCHEMA_ELEMENT = vol.Schema(
    vol.Any(
        vol.Match(RE_SCHEMA_ELEMENT),
        [vol.Any(vol.Match(RE_SCHEMA_ELEMENT), {str: vol.Self})],
        {str: vol.Self},
    )
)


def _migrate(config: Any) -> Any:
    """The part of ``_migrate_app_config`` that reshapes what we use: ``map`` strings become dicts."""
    if not isinstance(config, dict):
        raise vol.Invalid("App config must be a dictionary!")
    if not config.get("name"):
        raise vol.Invalid("Invalid app config!")
    volumes = []
    for entry in config.get("map", []):
        if isinstance(entry, dict) and "type" in entry:
            volumes.append(entry)
        elif isinstance(entry, str) and (result := RE_VOLUME.match(entry)):
            volumes.append({"type": result.group(1), "read_only": result.group(2) != "rw"})
        else:
            raise vol.Invalid(f"invalid map entry (the Supervisor skips it): {entry!r}")
    config["map"] = volumes
    return config


def _ingress_port_not_dynamic(config: dict) -> dict:
    """``_warn_app_config``'s one hard rule: with ``ingress_port: 0`` no mapped port in 62000-65500."""
    if config.get("ingress") and config.get("ingress_port") == 0:
        for container_port in config.get("ports", {}):
            number = str(container_port).partition("/")[0]
            if number.isdigit() and INGRESS_DYNAMIC_PORT_MIN <= int(number) <= INGRESS_DYNAMIC_PORT_MAX:
                raise vol.Invalid(f"maps port {number}, reserved for dynamic ingress ports")
    return config


_SCHEMA_APP_CONFIG = vol.Schema(
    {
        vol.Required("name"): str,
        vol.Required("version"): version_tag,
        vol.Required("slug"): vol.Match(r"^" + RE_SLUG + r"$"),
        vol.Required("description"): str,
        vol.Required("arch"): [vol.In(ARCH_ALL_COMPAT)],
        vol.Optional("url"): vol.Url(),
        vol.Optional("startup", default="application"): vol.In(STARTUP),
        vol.Optional("boot", default="auto"): vol.In(BOOT_CONFIG),
        vol.Optional("init", default=True): vol.Boolean(),
        vol.Optional("stage", default="stable"): vol.In(STAGE),
        vol.Optional("ports"): docker_ports,
        vol.Optional("ports_description"): docker_ports_description,
        vol.Optional("watchdog"): vol.Match(r"^(?:https?|\[PROTO:\w+\]|tcp):\/\/\[HOST\]:(\[PORT:\d+\]|\d+).*$"),
        vol.Optional("webui"): vol.Match(r"^(?:https?|\[PROTO:\w+\]):\/\/\[HOST\]:\[PORT:\d+\].*$"),
        vol.Optional("ingress", default=False): vol.Boolean(),
        vol.Optional("ingress_port", default=8099): vol.Any(network_port, vol.Equal(0)),
        vol.Optional("ingress_entry"): str,
        vol.Optional("ingress_stream", default=False): vol.Boolean(),
        vol.Optional("panel_icon", default="mdi:puzzle"): str,
        vol.Optional("panel_title"): str,
        vol.Optional("panel_admin", default=True): vol.Boolean(),
        vol.Optional("homeassistant"): version_tag,
        vol.Optional("host_network", default=False): vol.Boolean(),
        vol.Optional("map", default=list): [
            vol.Schema(
                {
                    vol.Required("type"): vol.In(MAPPING_TYPES),
                    vol.Optional("read_only", default=True): bool,
                    vol.Optional("path"): str,
                }
            )
        ],
        vol.Optional("environment"): {vol.Match(r"\w*"): str},
        vol.Optional("apparmor", default=True): vol.Boolean(),
        vol.Optional("audio", default=False): vol.Boolean(),
        vol.Optional("hassio_api", default=False): vol.Boolean(),
        vol.Optional("hassio_role", default="default"): vol.In(ROLE_ALL),
        vol.Optional("homeassistant_api", default=False): vol.Boolean(),
        vol.Optional("auth_api", default=False): vol.Boolean(),
        vol.Optional("services"): [vol.Match(RE_SERVICE)],
        vol.Optional("discovery"): [str],
        vol.Optional("backup_exclude"): [str],
        vol.Optional("backup", default="hot"): vol.In(BACKUP_MODES),
        vol.Optional("options", default={}): dict,
        vol.Optional("schema", default={}): vol.Any(vol.Schema({str: SCHEMA_ELEMENT}), False),
        vol.Optional("timeout", default=10): vol.All(vol.Coerce(int), vol.Range(min=10, max=300)),
        vol.Optional("journald", default=False): vol.Boolean(),
    },
    extra=vol.REMOVE_EXTRA,
)
SCHEMA_APP_CONFIG = vol.All(_migrate, _ingress_port_not_dynamic, _SCHEMA_APP_CONFIG)
KNOWN_CONFIG_KEYS = {str(key) for key in _SCHEMA_APP_CONFIG.schema}
"""The keys kept above; the Supervisor drops unknown ones silently (REMOVE_EXTRA), a test refuses them."""

SCHEMA_BUILD_CONFIG = vol.Schema(
    {
        vol.Optional("build_from", default=dict): vol.Any(
            vol.Match(RE_DOCKER_IMAGE_BUILD),
            vol.Schema({vol.In(ARCH_ALL_COMPAT): vol.Match(RE_DOCKER_IMAGE_BUILD)}),
        ),
        vol.Optional("squash", default=False): vol.Boolean(),
        vol.Optional("args", default=dict): vol.Schema({str: str}),
        vol.Optional("labels", default=dict): vol.Schema({str: str}),
    },
    extra=vol.REMOVE_EXTRA,
)

SCHEMA_TRANSLATION_CONFIGURATION = vol.Schema(
    {
        vol.Required("name"): str,
        vol.Optional("description"): vol.Maybe(str),
        vol.Optional("fields"): {str: vol.Self},
    },
    extra=vol.REMOVE_EXTRA,
)
SCHEMA_APP_TRANSLATIONS = vol.Schema(
    {
        vol.Optional("configuration"): {str: SCHEMA_TRANSLATION_CONFIGURATION},
        vol.Optional("network"): {str: str},
    },
    extra=vol.REMOVE_EXTRA,
)

# supervisor/store/validate.py
SCHEMA_REPOSITORY_CONFIG = vol.Schema(
    {vol.Required("name"): str, vol.Optional("url"): vol.Url(), vol.Optional("maintainer"): str},
    extra=vol.REMOVE_EXTRA,
)


def validate_options(raw_schema: dict, options: dict) -> dict:
    """``AppOptions.__call__``: ``options`` checked against the add-on's ``schema`` (no devices, no
    ``!secret`` lookups). Unknown options are dropped, as the Supervisor does (it logs a warning)."""
    checked = {
        key: _validate_element(raw_schema[key], value, key) for key, value in options.items() if key in raw_schema
    }
    _check_missing_options(raw_schema, checked, "root")
    return checked


def _validate_element(typ: Any, value: Any, key: str) -> Any:
    if isinstance(typ, list):
        if not isinstance(value, list):
            raise vol.Invalid(f"Invalid list for option '{key}'")
        return [_validate_element(typ[0], element, key) for element in value]
    if isinstance(typ, dict):
        if not isinstance(value, dict):
            raise vol.Invalid(f"Invalid dict for option '{key}'")
        checked = {k: _validate_element(typ[k], v, k) for k, v in value.items() if k in typ}
        _check_missing_options(typ, checked, key)
        return checked
    return _single_validate(typ, value, key)


def _single_validate(typ: str, value: Any, key: str) -> Any:
    if value is None:
        raise vol.Invalid(f"Missing required option '{key}'")
    match = RE_SCHEMA_ELEMENT.match(typ)
    if not match:
        raise vol.Invalid(f"Unknown type '{typ}'")
    range_args = {name[2:]: float(match.group(name)) for name in _SCHEMA_LENGTH_PARTS if match.group(name)}
    if typ.startswith("str") or typ.startswith("password"):
        return vol.All(str, vol.Length(**range_args))(value)
    if typ.startswith("int"):
        return vol.All(vol.Coerce(int), vol.Range(**range_args))(value)
    if typ.startswith("float"):
        return vol.All(vol.Coerce(float), vol.Range(**range_args))(value)
    if typ.startswith("bool"):
        return vol.Boolean()(value)
    if typ.startswith("email"):
        return vol.Email()(value)
    if typ.startswith("url"):
        return vol.Url()(value)
    if typ.startswith("port"):
        return network_port(value)
    if typ.startswith("match"):
        return vol.Match(match.group("match"))(str(value))
    if typ.startswith("list"):
        return vol.In(match.group("list").split("|"))(str(value))
    raise vol.Invalid(f"Fatal error for option '{key}' with type '{typ}'")


def _check_missing_options(origin: dict, exists: dict, root: str) -> None:
    for missing in set(origin) - set(exists):
        schema = origin[missing]
        if isinstance(schema, list) and schema:
            schema = schema[0]
        if isinstance(schema, str) and schema.endswith("?"):
            continue
        raise vol.Invalid(f"Missing option '{missing}' in {root}")
