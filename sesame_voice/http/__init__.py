"""The HTTP layer: route helpers, error mapping, request parsing."""
