"""engine.gguf: what a GGUF file is, read from its header; the bottom layer for everything that reads model files.

reader (bounded header parser), inspect (ModelInfo), splits (split-file naming), adapter (LoRA
adapter checks), memory (what a model needs to run).
"""
