"""Ember as a local model server for other programs (OpenAI-compatible), over the loaded models."""
