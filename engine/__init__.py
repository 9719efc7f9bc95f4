"""Ember's engine: pure Python, no Qt. Usable from the app, the CLI, a script or a test."""

__version__ = "0.1.0"
