"""The model-loading flags shared by `ember chat` and `ember serve`."""

from __future__ import annotations

import argparse

from engine.errors import InvalidInput
from engine.paths import EmberPaths
from engine.runtime.supervisor import HostSettings, RuntimeHost


def add_model_arguments(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument("--model", required=required, help="path of a GGUF file")
    parser.add_argument("--ctx", type=int, default=4096, help="context length in tokens (default 4096)")
    parser.add_argument("--gpu-layers", default="auto", help="layers to offload to the GPU: a number or auto")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: cores - 1)")
    parser.add_argument("--lora", default=None, help="path of a LoRA adapter (GGUF)")
    parser.add_argument("--lora-scale", type=float, default=1.0,
                        help="the adapter's strength (default 1.0; 0 is the base model alone)")
    parser.add_argument("--chat-format", default=None,
                        help="override the chat template: none, chatml, llama-3, gemma, mistral-instruct")


def add_remote_arguments(parser: argparse.ArgumentParser) -> None:
    """A remote OpenAI-compatible server instead of a local GGUF (engine/remote/)."""
    parser.add_argument("--endpoint", default=None, metavar="URL",
                        help="an OpenAI-compatible server (e.g. http://host:8080/v1) instead of --model")
    parser.add_argument("--api-key", default=None, help="the remote server's API key")
    parser.add_argument("--remote-model", default=None, metavar="NAME", help="the remote server's model to use")


def chat_host(args: argparse.Namespace, context_length: int | None = None):
    """The chat model a command uses: a local RuntimeHost (--model) or a RemoteHost (--endpoint)."""
    if getattr(args, "endpoint", None):
        from engine.remote.endpoints import Endpoint
        from engine.remote.host import RemoteHost

        if not args.remote_model:
            raise InvalidInput("--endpoint needs --remote-model NAME (one of the server's models).",
                               "List them with: curl URL/models")
        return RemoteHost(Endpoint("remote", args.endpoint, args.api_key or ""), args.remote_model,
                          context_length or args.ctx)
    if not args.model:
        raise InvalidInput("Give --model PATH (a GGUF file), or --endpoint URL with --remote-model NAME.")
    return RuntimeHost(host_settings(args), log_dir=logs_dir())


def host_settings(args: argparse.Namespace, **extra) -> HostSettings:
    if args.ctx < 64:
        raise InvalidInput(f"--ctx {args.ctx} is too small.", "Use at least 64 tokens (4096 is a good default).")
    if not -4.0 <= args.lora_scale <= 4.0:
        raise InvalidInput(f"--lora-scale {args.lora_scale} is out of range.", "Use a scale from -4 to 4 (1.0 is usual).")
    gpu_layers = args.gpu_layers if args.gpu_layers == "auto" else _int(args.gpu_layers, "--gpu-layers")
    return HostSettings(model_path=args.model, context_length=args.ctx, gpu_layers=gpu_layers,
                        threads=args.threads, lora_path=args.lora, lora_scale=args.lora_scale, chat_format=args.chat_format, **extra)


def logs_dir():
    return EmberPaths.from_env().logs


def _int(value: str, flag: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise InvalidInput(f"{flag} must be a number or 'auto', not {value!r}.") from exc
