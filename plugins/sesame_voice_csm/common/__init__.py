"""What both backends share: settings, checkpoint discovery and download, voice prompts, planning, the provider."""
