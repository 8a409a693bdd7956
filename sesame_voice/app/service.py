"""``sesame-voice service``: write and load a launchd agent (macOS) or systemd unit (Linux).

The unit runs *this* install (its real ``sesame-voice`` script, or this Python with ``-m``), with
the settings of the environment it was installed from, so the service serves what the user saw.
"""

from __future__ import annotations

import os
import plistlib
import pwd
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from sesame_voice.config import Settings

LABEL = "com.sesame-voice.server"
UNIT_NAME = "sesame-voice.service"
PASSED_ENV = ("HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_TOKEN", "SESAME_CONFIG")
"""Environment variables handed to the service, besides every setting's own (HOST, PORT, …)."""
SYSTEM_USER = "sesame-voice"
"""The unprivileged account a ``--system`` unit runs as (created on install if missing)."""
SECRETS_FILE = ".env"
"""Secrets live in the service's working folder with mode 0600, never in the unit or plist."""
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD", re.IGNORECASE)
_URL_WITH_PASSWORD = re.compile(r"://[^/@\s]*:[^/@\s]*@")


def split_secrets(env: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(plain settings, secrets): API keys, tokens, passwords and URLs that carry a password."""
    secret = {k: v for k, v in env.items() if _SECRET_NAME.search(k) or _URL_WITH_PASSWORD.search(v)}
    return {k: v for k, v in env.items() if k not in secret}, secret


class ServiceError(RuntimeError):
    """The service could not be installed or controlled; the message says why."""


@dataclass
class ServicePlan:
    """What ``install`` writes and runs: one file and the commands that load it."""

    kind: str
    """"launchd" or "systemd"."""
    path: Path
    content: str
    working_dir: Path
    """The service's CACHE_DIR, created before it starts."""
    load: list[list[str]] = field(default_factory=list)
    unload: list[list[str]] = field(default_factory=list)
    start: list[list[str]] = field(default_factory=list)
    stop: list[list[str]] = field(default_factory=list)
    status: list[list[str]] = field(default_factory=list)
    forget: list[list[str]] = field(default_factory=list)
    """Run after the file is removed (systemd's daemon-reload)."""
    secrets: dict[str, str] = field(default_factory=dict)
    """Written to ``working_dir/.env`` with mode 0600 (read by the server at start)."""

    @property
    def secrets_path(self) -> Path:
        return self.working_dir / SECRETS_FILE


def program() -> list[str]:
    """The command that starts this install's server: its console script, else ``python -m``."""
    script = Path(sys.executable).with_name("sesame-voice")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script), "serve"]
    return [sys.executable, "-m", "sesame_voice", "serve"]


def plugin_env_names(settings: Settings) -> set[str]:
    """Environment variables that the installed plugins declare they read (their classes' ``env_names``
    and the ``env_names`` hook)."""
    from sesame_voice.app.plugins import (
        collect_frontends,
        collect_providers,
        collect_responders,
        collect_stt_providers,
        make_plugin_manager,
    )

    pm = make_plugin_manager(disabled=settings.disabled_plugins)
    registrations = (
        *collect_providers(pm).values(),
        *collect_stt_providers(pm).values(),
        *collect_responders(pm).values(),
        *collect_frontends(pm).values(),
    )
    classes = [reg.cls for reg in registrations]
    hooked = {str(name) for names in pm.hook.env_names() for name in (names or ())}
    return {name for cls in classes for name in cls.env_names} | hooked


def service_environment(
    settings: Settings, environ: dict[str, str] | None = None, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """Settings taken from the installing environment, with VOICES_DIR and CACHE_DIR made explicit."""
    from sesame_voice.config import setting_names

    environ = dict(os.environ if environ is None else environ)
    wanted = {*setting_names(), *PASSED_ENV, *plugin_env_names(settings)}
    env = {name: value for name, value in sorted(environ.items()) if name in wanted}
    env["VOICES_DIR"] = str(Path(settings.voices_dir).expanduser().resolve())
    env["CACHE_DIR"] = str(Path(settings.cache_dir).expanduser().resolve())
    env.update(extra or {})
    return env


def detect_kind() -> str:
    """launchd on macOS, systemd elsewhere."""
    return "launchd" if sys.platform == "darwin" else "systemd"


def launchd_plan(settings: Settings, env: dict[str, str], system: bool) -> ServicePlan:
    """A launchd agent (or daemon with ``system``) that restarts the server unless it exits cleanly."""
    cache = Path(env["CACHE_DIR"])
    document = {
        "Label": LABEL,
        "ProgramArguments": program(),
        "EnvironmentVariables": env,
        "WorkingDirectory": str(cache),
        "RunAtLoad": True,
        # Restart after a crash, not after `service stop` (SIGTERM ends the server with status 0).
        "KeepAlive": {"SuccessfulExit": False},
        # Interactive: not throttled like a background job, so Metal inference keeps full speed.
        "ProcessType": "Interactive",
        "ExitTimeOut": int(settings.shutdown_grace) + 10,
        "StandardOutPath": str(cache / "launchd.out.log"),
        "StandardErrorPath": str(cache / "launchd.err.log"),
    }
    if system:
        document["UserName"] = _unprivileged_installer()
        path = Path("/Library/LaunchDaemons") / f"{LABEL}.plist"
        domain = "system"
    else:
        path = Path.home() / "Library" / "LaunchAgents" / f"{LABEL}.plist"
        domain = f"gui/{os.getuid()}"
    target = f"{domain}/{LABEL}"
    return ServicePlan(
        kind="launchd",
        path=path,
        content=plistlib.dumps(document).decode(),
        working_dir=cache,
        load=[["launchctl", "bootstrap", domain, str(path)]],
        unload=[["launchctl", "bootout", target]],
        start=[["launchctl", "kickstart", target]],
        stop=[["launchctl", "kill", "SIGTERM", target]],
        status=[["launchctl", "print", target]],
    )


def _unprivileged_installer() -> str:
    """The account a macOS system daemon runs as: the user who ran sudo; never root."""
    name = os.environ.get("SUDO_USER") or pwd.getpwuid(os.getuid()).pw_name
    if name == "root":
        raise ServiceError(
            "a system service must not run as root: run `sudo sesame-voice service install "
            "--system` from your own account"
        )
    return name


def _systemd_quote(value: str) -> str:
    """One ``Environment=`` assignment, quoted as systemd.syntax(7) reads it."""
    return value.replace("%", "%%").replace("\\", "\\\\").replace('"', '\\"')


def systemd_plan(settings: Settings, env: dict[str, str], system: bool) -> ServicePlan:
    """A systemd unit: the user's (``systemctl --user``) or, with ``system``, a system unit."""
    lines = [
        "# Written by `sesame-voice service install`; `sesame-voice service uninstall` removes it.",
        "[Unit]",
        "Description=sesame-voice: local voice server",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=exec",
        f"ExecStart={shlex.join(program())}",
        f"WorkingDirectory={env['CACHE_DIR']}",
        f"EnvironmentFile=-{Path(env['CACHE_DIR']) / SECRETS_FILE}",
        *(f'Environment="{_systemd_quote(f"{name}={value}")}"' for name, value in env.items()),
        "Restart=on-failure",
        "RestartSec=5",
        "KillSignal=SIGTERM",
        f"TimeoutStopSec={int(settings.shutdown_grace) + 10}",
    ]
    if system:
        lines += [
            f"User={SYSTEM_USER}",
            f"Group={SYSTEM_USER}",
            "NoNewPrivileges=true",
            "CacheDirectory=sesame-voice",
            "StateDirectory=sesame-voice",
            "ProtectSystem=strict",
            "ProtectHome=read-only",
            "PrivateTmp=true",
        ]
    lines += ["", "[Install]", f"WantedBy={'multi-user.target' if system else 'default.target'}", ""]
    if system:
        path = Path("/etc/systemd/system") / UNIT_NAME
        ctl = ["systemctl"]
    else:
        config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        path = config_home / "systemd" / "user" / UNIT_NAME
        ctl = ["systemctl", "--user"]
    return ServicePlan(
        kind="systemd",
        path=path,
        content="\n".join(lines),
        working_dir=Path(env["CACHE_DIR"]),
        load=[
            *(_create_system_user() if system else []),
            [*ctl, "daemon-reload"],
            [*ctl, "enable", "--now", UNIT_NAME],
        ],
        unload=[[*ctl, "disable", "--now", UNIT_NAME]],
        start=[[*ctl, "start", UNIT_NAME]],
        stop=[[*ctl, "stop", UNIT_NAME]],
        status=[[*ctl, "status", "--no-pager", UNIT_NAME]],
        forget=[[*ctl, "daemon-reload"]],
    )


def _create_system_user() -> list[list[str]]:
    """``useradd`` for the service account, unless it exists already."""
    try:
        pwd.getpwnam(SYSTEM_USER)
        return []
    except KeyError:
        return [["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER]]


def plan(
    settings: Settings,
    kind: str | None = None,
    system: bool = False,
    extra_env: dict[str, str] | None = None,
    environ: dict[str, str] | None = None,
) -> ServicePlan:
    """The unit for this platform (or ``kind``) and this install; secrets go to a 0600 file beside it."""
    env = service_environment(settings, environ, extra_env)
    kind = kind or detect_kind()
    if system and kind == "systemd":
        given = {**dict(os.environ if environ is None else environ), **(extra_env or {})}
        # The service account cannot read the installing user's home: systemd's own folders instead.
        if "CACHE_DIR" not in given:
            env["CACHE_DIR"] = "/var/cache/sesame-voice"
        if "VOICES_DIR" not in given:
            env["VOICES_DIR"] = "/var/lib/sesame-voice/voices"
        env.setdefault("HF_HOME", "/var/cache/sesame-voice/huggingface")
    env, secrets = split_secrets(env)
    if kind == "launchd":
        service = launchd_plan(settings, env, system)
    elif kind == "systemd":
        service = systemd_plan(settings, env, system)
    else:
        raise ServiceError(f"unknown service manager {kind!r}; use launchd or systemd")
    service.secrets = secrets
    return service


def write_secrets(service: ServicePlan) -> None:
    """The secrets file, created with mode 0600 (readable by its owner only) before anything is written."""
    lines = [f"{name}={_dotenv_quote(value)}" for name, value in sorted(service.secrets.items())]
    path = service.secrets_path
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("# Secrets of the sesame-voice service (written by `sesame-voice service install`).\n")
        out.write("\n".join(lines) + "\n")


def _dotenv_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _run(commands: list[list[str]], check: bool = True) -> int:
    status = 0
    for command in commands:
        print("$", shlex.join(command))
        try:
            status = subprocess.run(command, check=False).returncode
        except FileNotFoundError:
            raise ServiceError(f"{command[0]} is not installed; is this the right --manager?") from None
        if status and check:
            raise ServiceError(f"{shlex.join(command)} failed with status {status}")
    return status


def run_action(action: str, service: ServicePlan, dry_run: bool = False) -> int:
    """Carry out install / uninstall / start / stop / status; with ``dry_run`` only print."""
    steps = {
        "install": service.load,
        "uninstall": service.unload,
        "start": service.start,
        "stop": service.stop,
        "status": service.status,
    }[action]
    if dry_run:
        if action == "install":
            print(f"# would write {service.path}:")
            print(service.content)
            if service.secrets:
                print(f"# would write {service.secrets_path} (mode 0600): {', '.join(sorted(service.secrets))}")
        if action == "uninstall":
            print(f"# would remove {service.path}")
        for command in steps:
            print("# would run:", shlex.join(command))
        return 0
    if action == "install":
        service.path.parent.mkdir(parents=True, exist_ok=True)
        service.working_dir.mkdir(parents=True, exist_ok=True)
        service.path.write_text(service.content, encoding="utf-8")
        print(f"wrote {service.path}")
        if service.secrets:
            write_secrets(service)
            print(f"wrote {service.secrets_path} (mode 0600: {', '.join(sorted(service.secrets))})")
        return _run(steps)
    if action == "uninstall":
        _run(steps, check=False)
        if service.path.exists():
            service.path.unlink()
            print(f"removed {service.path}")
        _run(service.forget, check=False)
        return 0
    if not service.path.exists():
        raise ServiceError(f"no service installed at {service.path}; run `sesame-voice service install` first")
    return _run(steps, check=action != "status")
