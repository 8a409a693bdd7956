"""Constants shared by test modules (imported by name; conftest modules are not importable reliably)."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VOICES = REPO / "voices"

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please turn on the kitchen lights at seven.",
    "Today the weather is sunny with a light breeze.",
]
