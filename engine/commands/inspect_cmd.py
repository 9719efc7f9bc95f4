"""`ember inspect PATH [--json]`: what a GGUF file is and what it needs to run."""

from __future__ import annotations

from engine.commands.output import human_size, print_json
from engine.hub.inspect import estimate_memory, inspect_gguf


def register(subparsers) -> None:
    parser = subparsers.add_parser("inspect", help="show what a GGUF model file is")
    parser.add_argument("path", help="a .gguf file")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args) -> int:
    info = inspect_gguf(args.path)
    if args.json:
        print_json(info.to_dict())
        return 0
    rows = [
        ("file", info.file_name), ("architecture", info.architecture), ("name", info.name or "-"),
        ("parameters", f"{info.parameters / 1e6:,.1f} M"), ("quantization", info.quantization),
        ("tensor types", ", ".join(f"{k} ×{v}" for k, v in info.tensor_types.items())),
        ("file size", human_size(info.file_size)), ("context length", str(info.context_length or "-")),
        ("layers / heads / kv heads", f"{info.block_count} / {info.head_count} / {info.head_count_kv}"),
        ("embedding", str(info.embedding_length)), ("vocabulary", str(info.vocab_size or "-")),
        ("chat template", "yes" if info.has_chat_template else "no (a base model?)"),
        ("BOS / EOS token ids", f"{info.bos_token_id} / {info.eos_token_id}"),
    ]
    for context in sorted({4096, info.context_length or 4096}):
        memory = estimate_memory(info, context)
        rows.append((f"memory at {context} ctx", f"{human_size(memory.total)} (weights {human_size(memory.weights)}"
                     f", KV cache {human_size(memory.kv_cache)})"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0
