"""The trainer child's torch code. Only `python -m engine.finetune.train_child` imports these modules:
PyTorch never enters the app process (tests/engine/test_finetune_no_torch.py checks it)."""
