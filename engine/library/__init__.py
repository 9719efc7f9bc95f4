"""engine.library: the local model library (files the user has and their rows), above hub and gguf."""
