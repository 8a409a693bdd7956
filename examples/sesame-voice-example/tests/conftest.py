"""Nothing to set up: the fixtures come from sesame-voice's testing kit (a pytest plugin)."""
