"""The application: server, plugin manager, CLI, service files, discovery, runtime."""
