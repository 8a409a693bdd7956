"""The OpenAPI document says what the server enforces: a schema-valid speech request is never refused."""

from __future__ import annotations

import base64
import io
import json

import aiohttp
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis_jsonschema import from_schema


async def test_schema_limits_follow_the_settings(start_server):
    async with start_server(max_input_length=77) as server:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{server.http_port}/openapi.json") as response:
                document = await response.json()
    body = document["paths"]["/v1/audio/speech"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["input"]["maxLength"] == 77
    assert body["properties"]["input"]["minLength"] == 1
    names = body["properties"]["voice"]["anyOf"][0]["enum"]
    assert {"conversational", "alloy", "joe", "whisper"} <= set(names)
    assert "/metrics" in document["paths"] and "/health" in document["paths"]


def test_schema_valid_speech_requests_are_never_refused(start_server, tmp_path):
    """Generate bodies from the served schema (hypothesis-jsonschema) and send each to the server."""
    import asyncio

    async def fetch_schema_and_check(bodies):
        async with start_server(max_input_length=60) as server:
            base = f"http://127.0.0.1:{server.http_port}"
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/openapi.json") as response:
                    document = await response.json()
                schema = document["paths"]["/v1/audio/speech"]["post"]["requestBody"]["content"]["application/json"][
                    "schema"
                ]
                if bodies is None:
                    return schema
                for body in bodies:
                    async with http.post(f"{base}/v1/audio/speech", json=body) as response:
                        data = await response.read()
                        assert response.status == 200, (body, data[:300])
                        captioned = "timestamps" in body or "timestamps_format" in body
                        if captioned and body.get("stream_format", "audio") == "audio":
                            data = base64.b64decode(json.loads(data)["audio"])  # captioned JSON (docs/captions.md)
                        if body.get("response_format") == "wav" and body.get("stream_format", "audio") == "audio":
                            sf.read(io.BytesIO(data))  # and the audio decodes

    schema = asyncio.run(fetch_schema_and_check(None))
    bodies: list[dict] = []

    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(from_schema(schema))
    def collect(body):
        bodies.append(body)

    collect()
    assert len(bodies) >= 20
    asyncio.run(fetch_schema_and_check(bodies))


async def test_whitespace_and_control_only_input_is_refused_and_schema_invalid(start_server):
    import jsonschema

    async with start_server() as server:
        base = f"http://127.0.0.1:{server.http_port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/openapi.json") as response:
                document = await response.json()
            schema = document["paths"]["/v1/audio/speech"]["post"]["requestBody"]["content"]["application/json"][
                "schema"
            ]
            for text in (" \n\t ", "\x00\x07", "\u2003"):
                body = {"input": text, "voice": "joe"}
                with pytest.raises(jsonschema.ValidationError):
                    jsonschema.validate(body, schema)
                async with http.post(f"{base}/v1/audio/speech", json=body) as response:
                    assert response.status == 400
                    assert (await response.json())["error"]["code"] == "empty_input"
