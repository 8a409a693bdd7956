"""``sesame-voice voices`` and ``sesame-voice plugins``: what this install serves, as text or JSON."""

from __future__ import annotations

import asyncio
import json
import sys

from sesame_voice.app.plugins import (
    collect_frontends,
    collect_providers,
    collect_stt_providers,
    make_plugin_manager,
    plugin_rows,
)
from sesame_voice.config import Settings


def voices_command(settings: Settings, as_json: bool, pm=None) -> int:
    return asyncio.run(_list_voices(settings, as_json, pm))


async def _list_voices(settings: Settings, as_json: bool, pm) -> int:
    from sesame_voice.app.server import Server

    async with Server(settings, pm=pm).prepared() as server:
        voices = server.voices.list()
    if as_json:
        rows = [
            {
                "name": v.name,
                "provider": v.provider,
                "fallbacks": [f["provider"] for f in v.fallbacks],
                "aliases": list(v.aliases),
                "description": v.description,
                "source": str(v.source or ""),
            }
            for v in voices
        ]
        print(json.dumps({"voices": rows, "errors": server.voices.errors}, indent=2))
    else:
        for v in voices:
            chain = " → ".join([v.provider, *(f["provider"] for f in v.fallbacks)])
            default = " (default)" if v.name.lower() == settings.default_voice.lower() else ""
            aliases = f"  aliases: {', '.join(v.aliases)}" if v.aliases else ""
            print(f"{v.name}{default}  [{chain}]  {v.description}{aliases}")
        for name, error in server.voices.errors.items():
            print(f"SKIPPED {name}: {error}", file=sys.stderr)
    return 0


def plugins_command(settings: Settings, as_json: bool, pm=None) -> int:
    pm = pm or make_plugin_manager(disabled=settings.disabled_plugins)
    rows = plugin_rows(pm)
    providers = {n: r.plugin for n, r in collect_providers(pm).items()}
    frontends = {n: r.plugin for n, r in collect_frontends(pm).items()}
    stt = {n: r.plugin for n, r in collect_stt_providers(pm).items()}
    if as_json:
        print(
            json.dumps(
                {
                    "plugins": rows,
                    "providers": providers,
                    "stt_providers": stt,
                    "frontends": frontends,
                    "failed": pm.failed,
                    "disabled": list(settings.disabled_plugins),
                },
                indent=2,
            )
        )
        return 0
    for row in rows:
        print(f"{row['name']}  {row['distribution'] or '-'} {row['version'] or ''}  hooks: {', '.join(row['hooks'])}")
    print(f"providers: {', '.join(f'{n} ({p})' for n, p in providers.items()) or 'none'}")
    print(f"speech to text: {', '.join(f'{n} ({p})' for n, p in stt.items()) or 'none'}")
    print(f"frontends: {', '.join(f'{n} ({p})' for n, p in frontends.items()) or 'none'}")
    for name, error in pm.failed.items():
        print(f"FAILED {name}: {error}", file=sys.stderr)
    for name in settings.disabled_plugins:
        print(f"disabled: {name}")
    return 0
