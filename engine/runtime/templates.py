"""Chat templates, inside the runtime host only: Hugging Face's Jinja rules, sandboxed, time-limited, with a fallback.

A GGUF template is rendered the way `transformers`' `apply_chat_template` renders it, so the prompt is
token for token the one the model was trained on: HF's Jinja rules (template_env.py) and the
variables HF passes (messages, tools, documents, add_generation_prompt and the special tokens). The rendered text is the whole prompt: it is
tokenized with special tokens and without an added BOS, as HF tokenizes it (add_special_tokens=False).

A template that refuses a role is not broken. The start-up probe renders samples from the most to the
least demanding; one that renders without a system message but raises on one (or silently leaves it
out) keeps the template, and a system prompt is then put where such families expect it: at the start
of the first user message. Only a template that renders no sample at all is replaced by a built-in
format.

llama-cpp-python compiles every GGUF template in `Llama.__init__` and a syntax error fails the whole
load. The host swaps in `LenientFormatter`, which records the error instead, so the model still
loads and Ember falls back to a built-in format. A GGUF template is compiled and rendered in the
template child (template_process.py): a memory limit, its text counted, a 2-second deadline enforced
by killing that process, so a template that loops for ever or asks for a billion characters fails
one render (at start-up: the built-in format is used) and the host stays up. The built-in formats
(llama-cpp-python's own code) render in the host under `run_with_deadline`, which ends the host
(exit code TEMPLATE_TIMEOUT_EXIT) should one ever hang. The app process never renders a GGUF template.
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
from engine.runtime.template_process import TemplateStopped, shared_template_process

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

_SYSTEM = {"role": "system", "content": "Answer in one short sentence."}  # no template's own default text
_CHAT = [
    {"role": "user", "content": "Hello"},
    {"role": "assistant", "content": "Hi! How can I help?"},
    {"role": "user", "content": "Tell me a fact."},
]
# The start-up probe, most demanding first: (whether the sample has a system message, the sample).
_PROBES = [(True, [_SYSTEM, *_CHAT]), (False, _CHAT)]

SYSTEM_IN_USER_NOTICE = ("This model's chat template has no system role; Ember puts your system prompt "
                         "at the start of your first message.")


def _deadline_passed() -> None:
    sys.stderr.write(json.dumps({"event": "template_timeout", "deadline_s": RENDER_DEADLINE_S}) + "\n")
    sys.stderr.flush()
    os._exit(TEMPLATE_TIMEOUT_EXIT)


def run_with_deadline(fn, *args, **kwargs):
    """Run a built-in format; if it takes longer than the deadline, end the process (see module doc)."""
    timer = threading.Timer(RENDER_DEADLINE_S, _deadline_passed)
    timer.daemon = True
    timer.start()
    try:
        return fn(*args, **kwargs)
    finally:
        timer.cancel()


def fold_system_into_first_user(messages: list[dict]) -> list[dict]:
    """For a template with no system role: the system text, a blank line, then the first user message.

    Copies; the caller's messages are not changed. With no user message the system text becomes one.
    """
    system = "\n\n".join(m["content"] for m in messages
                          if m.get("role") == "system" and isinstance(m.get("content"), str) and m["content"])
    rest = [dict(m) for m in messages if m.get("role") != "system"]
    if not system:
        return rest
    for message in rest:
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, list):  # OpenAI content parts (/v1 clients)
            message["content"] = [{"type": "text", "text": f"{system}\n\n"}, *content]
        else:
            message["content"] = f"{system}\n\n{content or ''}"
        return rest
    return [{"role": "user", "content": system}, *rest]


class ChatTemplate:
    """One GGUF chat template, compiled with Hugging Face's rules; every render runs under the deadline."""

    def __init__(self, source: str, special_tokens: dict[str, str]) -> None:
        self.source = source
        self.special_tokens = special_tokens  # bos_token, eos_token... as HF passes its special_tokens_map
        self.error: str | None = None
        self.system_supported: bool | None = None  # None until probe() has run
        self._process = shared_template_process()
        self.error = self._process.compile(source)  # "does not compile: ...", or a limit it went past

    def render(self, messages: list[dict], **variables) -> str:
        """The template's text for exactly these messages (raises what the template raises), in the template child."""
        if self.error is not None:
            raise jinja2.TemplateError(self.error)
        context = {"tools": None, "documents": None, "add_generation_prompt": True, **self.special_tokens,
                   **variables, "messages": [dict(m) for m in messages]}
        return self._process.render(self.source, context)

    def probe(self) -> str | None:
        """Render the samples, most demanding first, and note whether a system message is accepted.

        A template that renders the system sample but leaves its text out drops system prompts
        silently (some Phi-3 templates do): it has no system role either. Returns why no sample
        rendered, or None when one did (the template is usable).
        """
        first_error = None
        for with_system, sample in _PROBES:
            try:
                text = self.render(sample)
            except Exception as exc:  # SecurityError, TemplateError, raise_exception(...) from the template
                first_error = first_error or exc
                continue
            self.system_supported = with_system and _SYSTEM["content"] in text
            return None
        if isinstance(first_error, TemplateStopped):  # its words already say what happened
            return str(first_error)
        return f"the chat template failed: {first_error}"

    def folds_system(self, messages: list[dict]) -> bool:
        """Whether these messages carry a system prompt that this template cannot take as one."""
        return self.system_supported is False and any(m.get("role") == "system" for m in messages)

    def render_chat(self, messages: list[dict], **variables) -> str:
        """Render a conversation, moving a refused system prompt into the first user message."""
        if self.folds_system(messages):
            messages = fold_system_into_first_user(messages)
        return self.render(messages, **variables)


class LenientFormatter(llama_chat_format.Jinja2ChatFormatter):
    """What `Llama.__init__` builds for each GGUF template (the /v1 routes use it): Ember's ChatTemplate.

    It survives a template that does not compile (the error is kept; rendering raises it), renders with
    HF's rules on the deadline, and folds a system prompt into the first user turn when the template
    refuses one, exactly as Ember's own route does.
    """

    def __init__(self, template: str, eos_token: str, bos_token: str, add_generation_prompt: bool = True,
                 stop_token_ids: list[int] | None = None) -> None:
        # Not super().__init__(): it compiles with llama-cpp-python's rules and raises on a syntax error.
        self.template, self.eos_token, self.bos_token = template, eos_token, bos_token
        self.add_generation_prompt = add_generation_prompt
        self.stop_token_ids = set(stop_token_ids) if stop_token_ids is not None else None
        self.chat = ChatTemplate(template, {"bos_token": bos_token, "eos_token": eos_token})
        self.error = self.chat.error

    def __call__(self, *, messages, tools=None, **kwargs):
        if self.chat.system_supported is None and self.error is None:
            self.chat.probe()
        prompt = self.chat.render_chat(messages, tools=tools, add_generation_prompt=self.add_generation_prompt)
        return llama_chat_format.ChatFormatterResponse(prompt=prompt, stop=[self.eos_token], added_special=True)


def install_lenient_formatter() -> None:
    """Make `Llama.__init__` build LenientFormatter for GGUF templates (it looks the class up at call time)."""
    llama_chat_format.Jinja2ChatFormatter = LenientFormatter


@dataclass
class PromptRenderer:
    """Turns chat messages into the prompt text the model was trained on, and says which format it used."""

    kind: str  # "gguf", "fallback:NAME" or "none"
    formatter: object | None  # ChatTemplate for "gguf"; a llama_chat_format function for fallbacks
    template_hash: str | None
    notice: str | None = None
    system_notice: str | None = None  # for the app to say once, when a system prompt is moved (see fold)

    @property
    def system_in_user(self) -> bool:
        """The template has no system role: a system prompt goes into the first user message."""
        return self.kind == "gguf" and self.formatter.system_supported is False

    def folds_system(self, messages: list[dict]) -> bool:
        return self.kind == "gguf" and self.formatter.folds_system(messages)

    def render(self, messages: list[dict]) -> tuple[str, list[str], bool]:
        """Return (prompt, stop strings, prompt already holds BOS).

        A GGUF template's text holds every special token the model expects (True: Ember adds no BOS).
        """
        if self.kind == "none":
            return _plain_transcript(messages), ["\nUser:", "\nuser:"], False
        if self.kind == "gguf":
            eos = self.formatter.special_tokens.get("eos_token")
            return self.formatter.render_chat(messages), [eos] if eos else [], True
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
    chat = ChatTemplate(template, special_tokens(llama))
    failure = chat.error or chat.probe()
    if failure:
        return _fallback(guess_fallback_format(llama), template_hash, failure)
    return PromptRenderer("gguf", chat, template_hash,
                          system_notice=None if chat.system_supported else SYSTEM_IN_USER_NOTICE)


def special_tokens(llama) -> dict[str, str]:
    """The special tokens HF hands every template (its special_tokens_map), as this GGUF names them.

    A token the GGUF does not set is left out, as HF leaves out one its tokenizer does not have.
    """
    ids = {"bos_token": llama.token_bos(), "eos_token": llama.token_eos(),
           "unk_token": _metadata_int(llama, "tokenizer.ggml.unknown_token_id"),
           "pad_token": _metadata_int(llama, "tokenizer.ggml.padding_token_id")}
    return {name: llama._model.token_get_text(token) for name, token in ids.items()
            if token is not None and 0 <= token < llama.n_vocab()}


def _metadata_int(llama, key: str) -> int | None:
    try:
        return int(llama.metadata[key])
    except (KeyError, ValueError):
        return None


def _fallback(name: str, template_hash: str | None, reason: str | None) -> PromptRenderer:
    if name not in FALLBACK_FORMATS:
        name = "chatml"
    formatter = FALLBACK_FORMATS[name]
    notice = f"{reason[0].upper()}{reason[1:]}; Ember uses its built-in {name} format." if reason else None
    return PromptRenderer(f"fallback:{name}", formatter, template_hash, notice)
