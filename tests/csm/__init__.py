"""Tests of the CSM provider plugin (a package, so its conftest does not shadow tests/conftest.py)."""
