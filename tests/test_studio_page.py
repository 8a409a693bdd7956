"""The studio's routes without a browser: content negotiation on GET /, its files, its overview."""

from __future__ import annotations

import re

import aiohttp

from sesame_voice_studio import STATIC


async def _get(url: str, **headers: str) -> tuple[int, dict, bytes]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers=headers) as response:
            return response.status, dict(response.headers), await response.read()


async def test_browsers_get_the_page_and_other_clients_keep_the_json(server, base_url):
    status, headers, body = await _get(f"{base_url}/", Accept="text/html,application/xhtml+xml,*/*;q=0.8")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"sesame-voice studio" in body
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    for accept in ("application/json", "*/*", ""):
        status, headers, body = await _get(f"{base_url}/", Accept=accept)
        assert status == 200 and headers["Content-Type"].startswith("application/json"), accept


async def test_the_page_uses_only_relative_urls_of_files_it_ships(server, base_url):
    page = (STATIC / "index.html").read_text()
    script = (STATIC / "app.js").read_text()
    references = re.findall(r'(?:href|src)="([^"#]+)"', page)
    assert references and all(not ref.startswith(("/", "http:", "https:", "//")) for ref in references)
    for ref in references:
        status, _, _ = await _get(f"{base_url}/{ref}")
        assert status == 200, ref
    # API calls are relative too: fetch("v1/…"), never "/v1/…" or another host.
    assert not re.search(r"""(api|fetch)\(\s*["'`](/|https?:)""", script)
    assert "http://" not in script and "https://" not in script


async def test_studio_files_cannot_reach_outside_their_folder(server, base_url):
    for name in ("..%2F__init__.py", "app.js.bak", "__init__.py", "missing.js"):
        status, _, body = await _get(f"{base_url}/studio/{name}")
        assert status == 404, name
        assert b"import" not in body


async def test_the_overview_needs_the_key_but_the_page_does_not(start_server):
    async with start_server(api_key="k3y") as running:
        base = f"http://127.0.0.1:{running.http_port}"
        status, _, body = await _get(f"{base}/", Accept="text/html")
        assert status == 200 and b"studio" in body
        assert (await _get(f"{base}/studio/app.js"))[0] == 200
        assert (await _get(f"{base}/studio/info"))[0] == 401
        status, _, body = await _get(f"{base}/studio/info", Authorization="Bearer k3y")
        assert status == 200 and b"voices_dir" in body
