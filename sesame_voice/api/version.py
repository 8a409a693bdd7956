"""The installed sesame-voice version."""

__version__ = "0.1.0"
