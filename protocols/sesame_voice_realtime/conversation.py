"""The conversation of one Realtime connection: its items, in order, bounded."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sesame_voice import ContextSegment

from .errors import RealtimeError, new_id
from .session_config import SAMPLE_RATE

USER_SPEAKER, ASSISTANT_SPEAKER = 1, 0
"""CSM speaker ids of the two sides (the voice speaks as 0)."""


@dataclass(eq=False)
class Item:
    """A message of the conversation; ``audio`` (float32 at 24 kHz) is kept for the voice's context."""

    role: str
    text: str = ""
    audio: np.ndarray | None = None
    status: str = "completed"
    id: str = field(default_factory=lambda: new_id("item"))
    transcribed: asyncio.Event | None = None
    """Set once the transcript of a user's audio is known (None: the item has its text already)."""

    def content(self) -> list[dict]:
        if self.role == "user" and self.audio is not None:
            return [{"type": "input_audio", "transcript": self.text if self.done_transcribing else None}]
        if self.role == "user":
            return [{"type": "input_text", "text": self.text}]
        if self.role == "system":
            return [{"type": "input_text", "text": self.text}]
        return [
            {
                "type": "output_audio" if self.audio is not None else "output_text",
                ("transcript" if self.audio is not None else "text"): self.text,
            }
        ]

    @property
    def done_transcribing(self) -> bool:
        return self.transcribed is None or self.transcribed.is_set()

    def wire(self) -> dict:
        return {
            "id": self.id,
            "object": "realtime.item",
            "type": "message",
            "role": self.role,
            "status": self.status,
            "content": self.content(),
        }


class Conversation:
    """Items in order; the oldest are forgotten beyond ``max_items``."""

    def __init__(self, max_items: int) -> None:
        self.max_items = max_items
        self.items: list[Item] = []

    def add(self, item: Item, previous_item_id: Any = None) -> str | None:
        """Insert after ``previous_item_id`` (``"root"``: first; None: last); returns the id before it."""
        if previous_item_id is None:
            index = len(self.items)
        elif previous_item_id == "root":
            index = 0
        else:
            index = self.index(previous_item_id, "previous_item_id") + 1
        self.items.insert(index, item)
        while len(self.items) > self.max_items:
            self.items.pop(0)
        position = self.items.index(item)
        return self.items[position - 1].id if position else None

    def index(self, item_id: Any, param: str = "item_id") -> int:
        for index, item in enumerate(self.items):
            if item.id == item_id:
                return index
        raise RealtimeError(
            f"no item with id {str(item_id)[:64]!r} in the conversation", param=param, code="item_not_found"
        )

    def get(self, item_id: Any) -> Item:
        return self.items[self.index(item_id)]

    def delete(self, item_id: Any) -> None:
        self.items.pop(self.index(item_id))

    async def transcripts(self) -> None:
        """Wait until every user audio item has its transcript."""
        for item in list(self.items):
            if item.transcribed is not None:
                await item.transcribed.wait()

    def turns(self) -> list[tuple[str, str]]:
        """``(role, text)`` of every item with text, oldest first (for the responder)."""
        return [(item.role, item.text) for item in self.items if item.text]

    def context(self, max_segments: int = 16) -> list[ContextSegment]:
        """The newest spoken turns for a conversational voice: text with the audio when known."""
        segments = []
        for item in self.items:
            if item.role in ("user", "assistant") and item.text:
                audio = item.audio if item.audio is not None and item.audio.size else None
                segments.append(
                    ContextSegment(
                        text=item.text,
                        speaker=USER_SPEAKER if item.role == "user" else ASSISTANT_SPEAKER,
                        audio=audio,
                        sample_rate=SAMPLE_RATE if audio is not None else None,
                    )
                )
        return segments[-max_segments:]
