"""The HTTP API, settings, job options and storage: torch-free modules."""
