"""Voices: the voices folder, presets and hot reload."""
