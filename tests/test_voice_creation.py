"""POST /v1/audio/voices and DELETE /v1/audio/voices/{name}: clones made by any client, stored like dropped-in files."""

from __future__ import annotations

import io

import aiohttp
import numpy as np
import soundfile as sf

TEXT = "Please turn on the kitchen lights at seven."


async def _spoken_clip(base_url: str, fmt: str = "mp3") -> bytes:
    """The bundled Piper voice saying TEXT: a real speaker clip in a lossy format."""
    body = {"model": "tts-1", "input": TEXT, "voice": "joe", "response_format": fmt}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base_url}/v1/audio/speech", json=body) as response:
            assert response.status == 200
            return await response.read()


def _form(name: str, clip: bytes, transcript: str = TEXT, **extra: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("name", name)
    form.add_field("transcript", transcript)
    for key, value in extra.items():
        form.add_field(key, value)
    form.add_field("file", clip, filename="clip.mp3", content_type="audio/mpeg")
    return form


async def _post(base_url: str, form, headers: dict | None = None) -> tuple[int, dict]:
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{base_url}/v1/audio/voices", data=form) as response:
            return response.status, await response.json()


async def _delete(base_url: str, name: str, headers: dict | None = None) -> tuple[int, bytes]:
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.delete(f"{base_url}/v1/audio/voices/{name}") as response:
            return response.status, await response.read()


async def _voices(base_url: str) -> dict[str, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base_url}/v1/audio/voices") as response:
            return {v["id"]: v for v in (await response.json())["data"]}


async def test_create_list_speak_delete(server, base_url, voices_dir):
    status, voice = await _post(base_url, _form("kitchen", await _spoken_clip(base_url), description="Joe, cloned"))
    assert status == 201, voice
    # CSM clones it; Piper stands in while CSM cannot load (no weights in the tests), as for a dropped-in clip.
    assert (voice["id"], voice["provider"], voice["fallbacks"]) == ("kitchen", "csm", ["piper"])
    assert voice["description"] == "Joe, cloned" and voice["deletable"] is True
    listed = await _voices(base_url)
    assert listed["kitchen"]["deletable"] and not listed["conversational"]["deletable"]
    # Stored exactly like a dropped-in clone: NAME.wav (mono, 24 kHz, -1 dBFS peak) and NAME.txt.
    samples, rate = sf.read(voices_dir / "kitchen.wav", dtype="float32", always_2d=True)
    assert rate == 24000 and samples.shape[1] == 1
    assert 0.85 < float(np.max(np.abs(samples))) < 0.9
    assert (voices_dir / "kitchen.txt").read_text().strip() == TEXT
    assert not list(voices_dir.glob("*.part"))

    body = {"model": "tts-1", "input": "Good morning.", "voice": "kitchen", "response_format": "wav"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base_url}/v1/audio/speech", json=body) as response:
            audio = await response.read()
            assert response.status == 200
            assert response.headers["X-Sesame-Voice"] == "kitchen"
            assert response.headers["X-Sesame-Provider"] == "piper"
            assert response.headers["X-Sesame-Fallback-From"] == "csm"
    spoken, _ = sf.read(io.BytesIO(audio), dtype="float32")
    assert float(np.sqrt(np.mean(np.square(spoken)))) > 0.01

    status, body = await _delete(base_url, "kitchen")
    assert status == 204 and body == b""
    assert "kitchen" not in await _voices(base_url)
    assert not [p.name for p in voices_dir.iterdir() if p.stem == "kitchen"]
    assert (await _delete(base_url, "kitchen"))[0] == 404


async def test_names_cannot_leave_the_voices_folder(server, base_url, voices_dir, tmp_path):
    clip = await _spoken_clip(base_url)
    for name in ("../escape", "a/b", "..", ".hidden", "x" * 65, "two words", "C:\\evil", "sub%2Fdir", "ümlaut"):
        status, error = await _post(base_url, _form(name, clip))
        assert status == 400, name
        assert error["error"]["code"] == "invalid_voice_name" and error["error"]["param"] == "name"
    assert not list(tmp_path.glob("escape*")) and not (voices_dir.parent / "escape.wav").exists()
    for name in ("..%2F..%2Fetc%2Fpasswd", "%2e%2e"):
        status, _ = await _delete(base_url, name)
        assert status == 404


async def test_bad_clips_are_refused_with_the_limits(server, base_url, voices_dir):
    status, error = await _post(base_url, _form("noise", b"this is not audio at all"))
    assert (status, error["error"]["code"]) == (400, "invalid_audio_file")

    rate = 24000
    silent = io.BytesIO()
    sf.write(silent, np.zeros(rate * 2, dtype=np.float32), rate, format="WAV")
    status, error = await _post(base_url, _form("quiet", silent.getvalue()))
    assert (status, error["error"]["code"]) == (400, "silent_audio")

    long_clip = io.BytesIO()
    t = np.arange(45 * rate) / rate
    sf.write(long_clip, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate, format="WAV")
    status, error = await _post(base_url, _form("lecture", long_clip.getvalue()))
    assert (status, error["error"]["code"]) == (400, "clip_out_of_range")
    assert "csm accepts 0.5–30 s" in error["error"]["message"]

    short_clip = io.BytesIO()
    sf.write(short_clip, (0.3 * np.sin(2 * np.pi * 220 * t[: rate // 5])).astype(np.float32), rate, format="WAV")
    status, error = await _post(base_url, _form("blip", short_clip.getvalue()))
    assert (status, error["error"]["code"]) == (400, "clip_out_of_range")
    assert "csm accepts 0.5–30 s" in error["error"]["message"]
    assert not [p for p in voices_dir.iterdir() if p.stem in ("noise", "quiet", "lecture", "blip")]


async def test_duplicates_and_presets_are_conflicts(server, base_url, voices_dir):
    clip = await _spoken_clip(base_url)
    assert (await _post(base_url, _form("twin", clip)))[0] == 201
    status, error = await _post(base_url, _form("TWIN", clip))
    assert (status, error["error"]["code"]) == (409, "voice_exists")
    for taken in ("conversational", "alloy", "joe"):  # a built-in preset, an alias, a provider's voice
        status, error = await _post(base_url, _form(taken, clip))
        assert (status, error["error"]["code"]) == (409, "voice_exists"), taken
    for preset in ("conversational", "joe", "alloy"):
        status, body = await _delete(base_url, preset)
        assert status == 409, preset
    (voices_dir / "narrator.yaml").write_text("provider: piper\n")
    server.voices.reload()
    status, _ = await _delete(base_url, "narrator")
    assert status == 409 and (voices_dir / "narrator.yaml").exists()


async def test_malformed_forms_are_4xx(server, base_url):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base_url}/v1/audio/voices", json={"name": "x"}) as response:
            assert response.status == 415
        async with http.post(
            f"{base_url}/v1/audio/voices", data=b"--x\r\n", headers={"Content-Type": "multipart/form-data"}
        ) as response:
            assert response.status == 400 and (await response.json())["error"]["code"] == "invalid_form"
        form = aiohttp.FormData()
        for index in range(20):
            form.add_field(f"extra{index}", "value")
        form.add_field("file", b"x", filename="x.wav")  # makes it multipart
        async with http.post(f"{base_url}/v1/audio/voices", data=form) as response:
            assert response.status == 400 and "more than 8 parts" in (await response.json())["error"]["message"]
        form = aiohttp.FormData()
        form.add_field("name", "nofile")
        form.add_field("transcript", "hello")
        form.add_field("description", b"", filename="empty.txt")  # makes it multipart
        async with http.post(f"{base_url}/v1/audio/voices", data=form) as response:
            assert response.status == 400 and (await response.json())["error"]["param"] == "file"
        form = _form("toolong", b"x" * 1000, transcript="word " * 1000)
        async with http.post(f"{base_url}/v1/audio/voices", data=form) as response:
            assert response.status == 400 and (await response.json())["error"]["param"] == "transcript"


async def test_the_api_key_is_required_when_set(start_server, voices_dir):
    async with start_server(api_key="s3cret") as server:
        base = f"http://127.0.0.1:{server.http_port}"
        key = {"Authorization": "Bearer s3cret"}
        body = {"model": "tts-1", "input": TEXT, "voice": "joe", "response_format": "mp3"}
        async with aiohttp.ClientSession(headers=key) as http:
            async with http.post(f"{base}/v1/audio/speech", json=body) as response:
                clip = await response.read()
        status, error = await _post(base, _form("keyed", clip))
        assert (status, error["error"]["code"]) == (401, "invalid_api_key")
        assert not (voices_dir / "keyed.wav").exists()
        assert (await _post(base, _form("keyed", clip), headers=key))[0] == 201
        assert (await _delete(base, "keyed"))[0] == 401
        assert (await _delete(base, "keyed", headers=key))[0] == 204


async def test_the_openapi_document_describes_create_and_delete(server, base_url):
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base_url}/openapi.json") as response:
            paths = (await response.json())["paths"]
    create = paths["/v1/audio/voices"]["post"]
    schema = create["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(schema["required"]) == {"name", "file", "transcript"}
    assert {"201", "400", "401", "409", "413"} <= set(create["responses"])
    assert {"204", "401", "404", "409"} <= set(paths["/v1/audio/voices/{name}"]["delete"]["responses"])
