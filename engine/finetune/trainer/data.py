"""Examples turned into token ids and labels, and the batches of each step (the same after a resume).

Chat examples are rendered with the model's own chat template and learn only the assistant's
tokens (with the end-of-turn marker the template puts after them, so replies learn to stop);
every other label is -100. Text examples learn every token and end with the end-of-sequence token.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass

import torch

from engine.finetune.dataset import Example

IGNORE = -100


@dataclass(frozen=True)
class Tokenized:
    input_ids: list[int]
    labels: list[int]
    truncated: bool = False

    @property
    def trained_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def render(tokenizer, messages, generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=generation_prompt)


def assistant_spans(tokenizer, messages) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of the assistant's turns in it.

    A turn's span runs from the end of the prompt that asks for it (the conversation so far with the
    generation prompt) to the end of the conversation including it: its text and end-of-turn marker."""
    full = render(tokenizer, messages)
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = render(tokenizer, messages[:index], generation_prompt=True)
        through = render(tokenizer, messages[: index + 1])
        if full.startswith(before) and full.startswith(through) and len(through) > len(before):
            spans.append((len(before), len(through)))
            continue
        # A template that renders a turn differently once more follow: find the text itself.
        start = full.find(message["content"], spans[-1][1] if spans else 0)
        if start >= 0:
            spans.append((start, start + len(message["content"]) + 1))  # + the next token: its end marker
    return full, spans


def tokenize_example(tokenizer, example: Example, seq_len: int) -> Tokenized | None:
    """Ids and labels cut at `seq_len`; None when nothing is left to learn (an answer past the cut)."""
    if example.kind == "text":
        ids = tokenizer(example.text, add_special_tokens=True)["input_ids"]
        if tokenizer.eos_token_id is not None and (not ids or ids[-1] != tokenizer.eos_token_id):
            ids = ids + [tokenizer.eos_token_id]
        labels = list(ids)
    else:
        text, spans = assistant_spans(tokenizer, example.messages)
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = encoded["input_ids"]
        labels = [token if any(start < end_span and end > start_span for start_span, end_span in spans) else IGNORE
                  for token, (start, end) in zip(ids, encoded["offset_mapping"], strict=True)]
    truncated = len(ids) > seq_len
    item = Tokenized(ids[:seq_len], labels[:seq_len], truncated)
    return item if item.trained_tokens else None


def tokenize_all(tokenizer, examples: list[Example], seq_len: int) -> tuple[list[Tokenized], int, int]:
    """(tokenized examples, how many were cut, how many were dropped)."""
    items, truncated, dropped = [], 0, 0
    for example in examples:
        item = tokenize_example(tokenizer, example, seq_len)
        if item is None:
            dropped += 1
            continue
        truncated += item.truncated
        items.append(item)
    return items, truncated, dropped


def token_stats(train: list[Tokenized], held_out: list[Tokenized], truncated: int, dropped: int) -> dict:
    lengths = [len(t.input_ids) for t in train + held_out] or [0]
    return {"train_examples": len(train), "held_out_examples": len(held_out), "min_tokens": min(lengths),
            "max_tokens": max(lengths), "mean_tokens": statistics.fmean(lengths), "truncated": truncated,
            "dropped": dropped, "trained_tokens": sum(t.trained_tokens for t in train)}


def step_indices(n: int, seed: int, step: int, per_step: int) -> list[int]:
    """The examples of optimizer step `step` (0-based): a fresh shuffle each epoch, fixed by the seed,
    so a resumed job sees exactly the batches it would have seen."""
    out = []
    for position in range(step * per_step, (step + 1) * per_step):
        epoch, offset = divmod(position, n)
        out.append(_epoch_order(n, seed, epoch)[offset])
    return out


_orders: dict[tuple[int, int, int], list[int]] = {}


def _epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    key = (n, seed, epoch)
    if key not in _orders:
        order = list(range(n))
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
        _orders.clear()  # one epoch at a time is all a run needs
        _orders[key] = order
    return _orders[key]


def collate(items: list[Tokenized], pad_id: int, device) -> dict:
    """Right-padded tensors; padding is masked out of attention and of the loss."""
    width = max(len(t.input_ids) for t in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, item in enumerate(items):
        n = len(item.input_ids)
        ids[row, :n] = torch.tensor(item.input_ids)
        labels[row, :n] = torch.tensor(item.labels)
        mask[row, :n] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}
