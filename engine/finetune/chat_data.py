"""The user's own chat data: JSONL, one conversation a line in OpenAI's `messages` format.

    {"messages": [{"role": "system", "content": "..."}, {"role": "user", "content": "..."},
                  {"role": "assistant", "content": "..."}]}

Every line is checked; the bad ones are reported by number with what is wrong, all at once, so
the user fixes the file in one go instead of one error at a time.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.finetune.errors import BadTrainingData

ROLES = ("system", "user", "assistant")
MAX_REPORTED = 10


def _json_line(line: str):
    """A line's JSON value, or ValueError saying it is not JSON."""
    try:
        return json.loads(line)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None


def parse_chat_line(line: str) -> tuple[dict, ...]:
    """One line's messages, or ValueError saying what is wrong with it."""
    value = _json_line(line)
    messages = value.get("messages") if isinstance(value, dict) else None
    if not isinstance(messages, list) or not messages:
        raise ValueError('no "messages" list')
    out = []
    for index, message in enumerate(messages, 1):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise ValueError(f"message {index} has no role of {', '.join(ROLES)}")
        content = message.get("content")
        if not isinstance(content, str):
            raise ValueError(f"message {index} has no text content")
        out.append({"role": message["role"], "content": content})
    if not any(m["role"] == "assistant" and m["content"].strip() for m in out):
        raise ValueError("no assistant message to learn from")
    if out[0]["role"] == "assistant" or (out[0]["role"] == "system" and len(out) > 1 and out[1]["role"] != "user"):
        raise ValueError("the conversation must start with the user (after an optional system message)")
    return tuple(out)


def parse_pair_line(line: str) -> tuple[str, str]:
    """One reviewed (question, answer) pair, or ValueError saying what is wrong with the line."""
    value = _json_line(line)
    if not isinstance(value, dict) or not isinstance(value.get("question"), str) \
            or not isinstance(value.get("answer"), str):
        raise ValueError('needs a "question" and an "answer" text')
    return value["question"], value["answer"]


def chat_files(path: str | Path) -> list[Path]:
    """The JSONL files that a path given as chat data stands for: the file itself, or a folder's .jsonl
    files (below it too, in name order)."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    found = sorted(p for p in path.rglob("*.jsonl") if p.is_file())
    if not found:
        raise BadTrainingData(f"{path} has no .jsonl files.",
                              "Put the conversations in .jsonl files there, or give the files themselves.")
    return found


def read_chat_jsonl(path: str | Path) -> list[tuple[dict, ...]]:
    """Every conversation of the file; BadTrainingData listing the bad lines by number."""
    return _read_jsonl(Path(path), parse_chat_line,
                       '{"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}')


def read_pairs_jsonl(path: str | Path) -> list[tuple[str, str]]:
    """Reviewed question/answer pairs, one {"question": ..., "answer": ...} a line; bad lines named by number."""
    return _read_jsonl(Path(path), parse_pair_line, '{"question": "...", "answer": "..."}')


def _read_jsonl(path: Path, parse_line, shape: str) -> list:
    """Every non-blank line through `parse_line`; BadTrainingData naming all the bad lines at once (the
    first MAX_REPORTED of them), so the user fixes the file in one go."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise BadTrainingData(f"{path.name} is not UTF-8 text.", "Save it as UTF-8 JSONL.") from None
    except OSError as exc:  # missing, a folder, not readable: the user's input, not Ember's fault
        raise BadTrainingData(f"{path} cannot be read: {exc.strerror or exc}.",
                              "Give a JSONL file that exists and that you may read.") from None
    values, problems = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            values.append(parse_line(line))
        except ValueError as exc:
            problems.append(f"line {number}: {exc}")
    if problems:
        shown = "; ".join(problems[:MAX_REPORTED])
        more = f" (and {len(problems) - MAX_REPORTED} more)" if len(problems) > MAX_REPORTED else ""
        raise BadTrainingData(f"{path.name} has {len(problems)} bad line{'s' if len(problems) > 1 else ''}: "
                              f"{shown}{more}.", f"Each line must be {shape}.")
    return values
