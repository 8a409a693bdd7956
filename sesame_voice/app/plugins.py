"""Plugin manager: loads built-in and third-party plugins from the ``sesame_voice`` entry points."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata

import pluggy

from sesame_voice.api import hookspecs
from sesame_voice.api.frontend import Frontend
from sesame_voice.api.provider import Provider
from sesame_voice.api.responder import Responder
from sesame_voice.api.stt import SttProvider

_LOGGER = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "sesame_voice"
DISTRIBUTION = "sesame-voice"
"""The distribution whose plugins are built in."""


class PluginClash(Exception):
    """Two plugins registered the same provider or frontend name."""


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, remembering which distribution supplied each plugin."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.distributions: dict[str, tuple[str, str]] = {}
        self.failed: dict[str, str] = {}

    def load_entry_points(self) -> None:
        """Like ``load_setuptools_entrypoints`` but one broken plugin does not stop the others."""
        for dist in metadata.distributions():
            for ep in dist.entry_points:
                if ep.group != ENTRY_POINT_GROUP or self.get_plugin(ep.name) or self.is_blocked(ep.name):
                    continue
                try:
                    plugin = ep.load()
                    self.register(plugin, name=ep.name)
                except Exception as err:
                    _LOGGER.exception("Plugin %s (%s) failed to load; skipped", ep.name, ep.value)
                    self.failed[ep.name] = f"{type(err).__name__}: {err}"
                    continue
                self.distributions[ep.name] = (dist.metadata["Name"], dist.version)


def make_plugin_manager(disabled: Iterable[str] = (), load_entry_points: bool = True) -> PluginManager:
    """A fresh PluginManager with every entry-point plugin loaded except the ``disabled`` names."""
    pm = PluginManager()
    for name in disabled:
        pm.set_blocked(name)
    if load_entry_points:
        pm.load_entry_points()
    return pm


@dataclass(frozen=True)
class Registration:
    """A class supplied by a plugin."""

    cls: type
    plugin: str


def _describe(pm: pluggy.PluginManager, plugin: str) -> str:
    dist = getattr(pm, "distributions", {}).get(plugin)
    return f"{plugin} ({dist[0]} {dist[1]})" if dist else plugin


def _collect(pm: pluggy.PluginManager, hook_name: str, base: type) -> dict[str, Registration]:
    found: dict[str, Registration] = {}
    impls = getattr(pm.hook, hook_name).get_hookimpls()
    for impl in impls:

        def register(cls: type, _plugin: str = impl.plugin_name) -> None:
            if not (isinstance(cls, type) and issubclass(cls, base)) or not cls.name:
                raise TypeError(f"plugin {_plugin} registered {cls!r}, not a named {base.__name__}")
            if cls.name in found:
                first = found[cls.name].plugin
                raise PluginClash(
                    f"{base.__name__.lower()} {cls.name!r} registered by both plugin {_describe(pm, first)} "
                    f"and plugin {_describe(pm, _plugin)}; uninstall one or disable it (--disable {_plugin})"
                )
            found[cls.name] = Registration(cls, _plugin)

        # One plugin at a time, through pluggy, so each registration is attributed to its plugin.
        others = [other.plugin for other in impls if other is not impl]
        pm.subset_hook_caller(hook_name, remove_plugins=others)(register=register)
    return found


def collect_providers(pm: pluggy.PluginManager) -> dict[str, Registration]:
    """Provider classes by provider name."""
    return _collect(pm, "register_providers", Provider)


def collect_stt_providers(pm: pluggy.PluginManager) -> dict[str, Registration]:
    """Speech-to-text provider classes by provider name."""
    return _collect(pm, "register_stt_providers", SttProvider)


def stt_providers(pm: pluggy.PluginManager, settings) -> dict[str, SttProvider]:
    """The speech-to-text providers, made with ``settings``; PluginClash if two serve one model name.

    Clients pick a provider by its name or its model's name, so a model name that another provider
    also serves (or is called) would be ambiguous, like two providers of the same name.
    """
    registrations = collect_stt_providers(pm)
    providers = {name: reg.cls(settings) for name, reg in registrations.items()}
    claimed: dict[str, str] = dict(zip(providers, providers))
    for name, provider in providers.items():
        model = provider.model_name()
        other = claimed.setdefault(model, name)
        if other != name:
            raise PluginClash(
                f"speech-to-text model {model!r} served by both provider {other} (plugin "
                f"{_describe(pm, registrations[other].plugin)}) and provider {name} (plugin "
                f"{_describe(pm, registrations[name].plugin)}); uninstall one or disable it "
                f"(--disable {registrations[name].plugin})"
            )
    return providers


def built_in_stt(pm: pluggy.PluginManager) -> list[str]:
    """Speech-to-text providers registered by sesame-voice's own plugins (not by a third party)."""
    distributions = getattr(pm, "distributions", {})
    return [
        name
        for name, reg in collect_stt_providers(pm).items()
        if distributions.get(reg.plugin, ("",))[0] == DISTRIBUTION
    ]


def collect_responders(pm: pluggy.PluginManager) -> dict[str, Registration]:
    """Responder classes by responder name."""
    return _collect(pm, "register_responders", Responder)


def collect_frontends(pm: pluggy.PluginManager) -> dict[str, Registration]:
    """Frontend classes by frontend name."""
    return _collect(pm, "register_frontends", Frontend)


def plugin_rows(pm: PluginManager) -> list[dict]:
    """One row per loaded plugin: name, distribution, version, hooks it implements."""
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:
            continue
        dist, version = pm.distributions.get(name, (None, None))
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        rows.append({"name": name, "distribution": dist, "version": version, "hooks": hooks})
    return rows
