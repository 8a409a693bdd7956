"""The engine: provider workers, synthesis, transcription, context fitting, metrics."""
