"""Chat templates, inside the runtime host only: sandboxed, time-limited, with a built-in fallback.

llama-cpp-python compiles every GGUF template in `Llama.__init__` and a syntax error fails the whole
load. The host swaps in `LenientFormatter`, which records the error instead, so the model still
loads and Ember falls back to a built-in format. Every render runs under a 2-second deadline: a
template that loops for ever ends this process (exit code TEMPLATE_TIMEOUT_EXIT) and the supervisor
restarts the host with the built-in format. The app process never renders a GGUF template.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from dataclasses import dataclass

import jinja2
from llama_cpp import llama_chat_format

from engine.runtime.protocol import RENDER_DEADLINE_S, TEMPLATE_TIMEOUT_EXIT

# Special tokens that tell which built-in format a model was trained with.
_FORMAT_MARKERS = [
    ("<|im_start|>", "chatml"),
    ("<|start_header_id|>", "llama-3"),
    ("<start_of_turn>", "gemma"),
    ("[INST]", "mistral-instruct"),
]

# Built-in formats a user can pick, and that stand in for a broken template.
FALLBACK_FORMATS = {
    "chatml": llama_chat_format.format_chatml,
    "llama-3": llama_chat_format.format_llama3,
    "gemma": llama_chat_format.format_gemma,
    "mistral-instruct": llama_chat_format.format_mistral_instruct,
}

_SAMPLE_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Hello"},
    {"role": "assistant", "content": "Hi! How can I help?"},
    {"role": "user", "content": "Tell me a fact."},
]


def _deadline_passed() -> None:
    sys.stderr.write(json.dumps({"event": "template_timeout", "deadline_s": RENDER_DEADLINE_S}) + "\n")
    sys.stderr.flush()
    os._exit(TEMPLATE_TIMEOUT_EXIT)


def run_with_deadline(fn, *args, **kwargs):
    """Run a template render; if it takes longer than the deadline, end the process (see module doc)."""
    timer = threading.Timer(RENDER_DEADLINE_S, _deadline_passed)
    timer.daemon = True
    timer.start()
    try:
        return fn(*args, **kwargs)
    finally:
        timer.cancel()


class LenientFormatter(llama_chat_format.Jinja2ChatFormatter):
    """llama-cpp-python's sandboxed Jinja formatter that survives a broken template and renders on a deadline."""

    def __init__(self, template: str, eos_token: str, bos_token: str, **kwargs) -> None:
        self.error: str | None = None
        try:
            super().__init__(template, eos_token, bos_token, **kwargs)
        except jinja2.TemplateError as exc:
            self.template, self.eos_token, self.bos_token = template, eos_token, bos_token
            self.error = f"the chat template does not compile: {exc}"

    def __call__(self, **kwargs):
        if self.error:
            raise jinja2.TemplateError(self.error)
        return run_with_deadline(super().__call__, **kwargs)


def install_lenient_formatter() -> None:
    """Make `Llama.__init__` build LenientFormatter for GGUF templates (it looks the class up at call time)."""
    llama_chat_format.Jinja2ChatFormatter = LenientFormatter


@dataclass
class PromptRenderer:
    """Turns chat messages into the prompt text the model was trained on, and says which format it used."""

    kind: str  # "gguf", "fallback:NAME" or "none"
    formatter: object | None  # LenientFormatter for "gguf"; a llama_chat_format function for fallbacks
    template_hash: str | None
    notice: str | None = None

    def render(self, messages: list[dict]) -> tuple[str, list[str], bool]:
        """Return (prompt, stop strings, prompt already holds BOS)."""
        if self.kind == "none":
            return _plain_transcript(messages), ["\nUser:", "\nuser:"], False
        if self.kind == "gguf":
            result = self.formatter(messages=messages)
        else:
            result = run_with_deadline(self.formatter, messages=messages)
        stop = result.stop or []
        stops = [stop] if isinstance(stop, str) else list(stop)
        return result.prompt, [s for s in stops if s], bool(result.added_special)


def _plain_transcript(messages: list[dict]) -> str:
    """For a base model with no template: a plain transcript it can continue."""
    lines = []
    for message in messages:
        role = message["role"]
        if role == "system":
            lines.append(message["content"])
        else:
            lines.append(f"{'User' if role == 'user' else 'Assistant'}: {message['content']}")
    lines.append("Assistant:")
    return "\n".join(lines)


def guess_fallback_format(llama) -> str:
    """The built-in format whose special tokens this model's vocabulary has (ChatML if none match)."""
    for marker, name in _FORMAT_MARKERS:
        try:
            if len(llama.tokenize(marker.encode(), add_bos=False, special=True)) == 1:
                return name
        except Exception:
            continue
    return "chatml"


def choose_renderer(llama, forced_format: str | None) -> PromptRenderer:
    """Pick how prompts are made: the user's choice, else the GGUF template if it renders safely, else a fallback.

    A render that hangs ends the process here (see module doc); the supervisor retries with a fallback.
    """
    template = llama.metadata.get("tokenizer.chat_template")
    template_hash = hashlib.sha256(template.encode()).hexdigest()[:16] if template else None
    if forced_format and forced_format not in ("gguf", "auto"):
        if forced_format == "none":
            return PromptRenderer("none", None, None)
        return _fallback(forced_format, template_hash, None)
    if not template:
        return PromptRenderer("none", None, None, notice="This model has no chat template (a base model): "
                              "Ember sends it a plain transcript. Pick a chat format if it is a chat model.")
    formatter = _formatter_from_llama(llama, template)
    if formatter.error:
        return _fallback(guess_fallback_format(llama), template_hash, formatter.error)
    try:
        formatter(messages=_SAMPLE_MESSAGES)
    except Exception as exc:  # SecurityError, TemplateError, raise_exception(...) from the template
        return _fallback(guess_fallback_format(llama), template_hash, f"the chat template failed: {exc}")
    return PromptRenderer("gguf", formatter, template_hash)


def _formatter_from_llama(llama, template: str) -> LenientFormatter:
    eos = llama._model.token_get_text(llama.token_eos()) if llama.token_eos() != -1 else ""
    bos = llama._model.token_get_text(llama.token_bos()) if llama.token_bos() != -1 else ""
    return LenientFormatter(template=template, eos_token=eos, bos_token=bos)


def _fallback(name: str, template_hash: str | None, reason: str | None) -> PromptRenderer:
    if name not in FALLBACK_FORMATS:
        name = "chatml"
    formatter = FALLBACK_FORMATS[name]
    notice = f"{reason[0].upper()}{reason[1:]}; Ember uses its built-in {name} format." if reason else None
    return PromptRenderer(f"fallback:{name}", formatter, template_hash, notice)
