"""Real chat templates (tests/support/chat_templates/) and the reference they must render to.

The reference is transformers' own `render_jinja_template`, the function behind
`tokenizer.apply_chat_template` (it imports without torch), called as `apply_chat_template` calls it:
the messages, `tools` and `documents` (None), `add_generation_prompt=True` and the tokenizer's special
tokens. `apply_chat_template` then tokenizes the text with `add_special_tokens=False`; here the same
text goes through the model's own llama.cpp tokenizer with special tokens parsed and no BOS added.
The special tokens are read from the GGUF header with Ember's bounded reader, not through llama.cpp,
so a wrong mapping on Ember's side shows.
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path

from transformers.utils.chat_template_utils import render_jinja_template

from engine.gguf.reader import read_header, read_string_item

TEMPLATE_DIR = Path(__file__).parent / "chat_templates"

_SPECIAL_TOKEN_IDS = {
    "bos_token": "tokenizer.ggml.bos_token_id",
    "eos_token": "tokenizer.ggml.eos_token_id",
    "unk_token": "tokenizer.ggml.unknown_token_id",
    "pad_token": "tokenizer.ggml.padding_token_id",
}


def template_names() -> list[str]:
    return sorted(path.stem for path in TEMPLATE_DIR.glob("*.jinja"))


def read_template(name: str) -> str:
    """The exact text (bytes decoded, no newline translation)."""
    return (TEMPLATE_DIR / f"{name}.jinja").read_bytes().decode("utf-8")


def gguf_special_tokens(path: Path) -> dict[str, str]:
    """bos/eos/unk/pad token texts of a GGUF, as HF's special_tokens_map would hold them."""
    header = read_header(path)
    vocab = header.metadata["tokenizer.ggml.tokens"]
    found = {}
    for name, key in _SPECIAL_TOKEN_IDS.items():
        if key in header.metadata:
            found[name] = read_string_item(path, vocab, int(header.metadata[key]))
    return found


def reference_prompt(template: str, messages: list[dict], special_tokens: dict[str, str],
                     tools: list[dict] | None = None) -> str:
    """The prompt text `apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=False)` makes."""
    rendered, _ = render_jinja_template(conversations=[messages], chat_template=template, add_generation_prompt=True,
                                        tools=tools, documents=None, **special_tokens)
    return rendered[0]


def reference_tokens(tokenizer, text: str) -> list[int]:
    """`text` tokenized as apply_chat_template tokenizes it: special tokens parsed, none added."""
    return tokenizer.tokenize(text.encode("utf-8"), add_bos=False, special=True)


def host_post(client, path: str, body: dict, first_line_only: bool = False) -> dict:
    """POST JSON to a host route with the client's address and token; with first_line_only, read one NDJSON line."""
    port = client.stream_port if path == "/ember/chat" else client.port  # the chat stream has its own port
    conn = http.client.HTTPConnection(client.host, port, timeout=60)
    try:
        conn.request("POST", path, json.dumps(body),
                     {"Authorization": f"Bearer {client.token}", "Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.readline() if first_line_only else response.read()
        assert response.status == 200, data
        return json.loads(data)
    finally:
        conn.close()
