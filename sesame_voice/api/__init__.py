"""The public API for plugins: types, errors, base classes, hook specifications."""
