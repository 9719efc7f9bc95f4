"""`ember inspect PATH [--json]`: what a GGUF file is and what it needs to run."""

from __future__ import annotations

from engine.commands.output import print_json
from engine.gguf.inspect import inspect_gguf
from engine.gguf.memory import estimate_memory
from engine.progress_text import human_size

DEFAULT_CONTEXT = 4096


def register(subparsers) -> None:
    parser = subparsers.add_parser("inspect", help="show what a GGUF model file is")
    parser.add_argument("path", help="a .gguf file (for a split model, any of its parts)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--with-template", action="store_true", help="include the chat template in the JSON")
    parser.set_defaults(func=run)


def _contexts(info) -> list[int]:
    return sorted({DEFAULT_CONTEXT, info.context_length or DEFAULT_CONTEXT})


def run(args) -> int:
    info = inspect_gguf(args.path)  # BadModelFile says what is wrong; cli.py prints it
    if args.json:
        data = info.to_dict(with_template=args.with_template)
        data["memory"] = [{"context_length": n, **estimate_memory(info, n).to_dict()} for n in _contexts(info)]
        print_json(data)
        return 0
    parts = f" ({info.split_parts} of {info.split_total} parts)" if info.split_total > 1 else ""
    rows = [
        ("file", info.file_name + parts), ("architecture", info.architecture), ("name", info.name or "-"),
        ("parameters", f"{info.parameters / 1e6:,.1f} M"), ("quantization", info.quantization),
        ("tensor types", ", ".join(f"{k} ×{v}" for k, v in info.tensor_types.items())),
        ("file size", human_size(info.file_size)), ("context length", str(info.context_length or "-")),
        ("layers / heads / kv heads", f"{info.block_count} / {info.head_count} / {info.head_count_kv}"),
        ("embedding", str(info.embedding_length)), ("vocabulary", str(info.vocab_size or "-")),
        ("chat template", "yes" if info.has_chat_template else "no (a base model?)"),
        ("BOS / EOS tokens", f"{_token(info.bos_token_id, info.bos_token)} / "
                             f"{_token(info.eos_token_id, info.eos_token)}"),
    ]
    for context in _contexts(info):
        memory = estimate_memory(info, context)
        rows.append((f"memory at {context} ctx", f"{human_size(memory.total)} (weights {human_size(memory.weights)}"
                     f", KV cache {human_size(memory.kv_cache)}, compute {human_size(memory.overhead)})"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


def _token(token_id: int | None, text: str | None) -> str:
    if token_id is None:
        return "-"
    return f"{token_id} {text!r}" if text is not None else str(token_id)
