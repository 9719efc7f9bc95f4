"""Remote backends: chat models on OpenAI-compatible servers, used like a local model process."""
