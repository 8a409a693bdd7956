"""Testing kit of the OpenAI frontend (a pytest plugin, loaded automatically): ``openai_client``."""

from __future__ import annotations

import pytest


@pytest.fixture
def openai_client(server):
    """The official async ``openai`` SDK pointed at ``server`` (needs ``pip install openai``)."""
    from openai import AsyncOpenAI

    return AsyncOpenAI(
        base_url=f"http://127.0.0.1:{server.http_port}/v1",
        api_key=server.settings.api_key or "sk-test-anything",
        max_retries=0,
        timeout=120,
    )
