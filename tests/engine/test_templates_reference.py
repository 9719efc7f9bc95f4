"""Real chat templates render token for token as transformers renders them, and a refused system role is not a broken template.

Each template of tests/support/chat_templates/ is put into a copy of the SmolLM2 model. Most checks
run in-process on a metadata-only copy opened with `vocab_only=True` (the renderer is Python plus the
tokenizer); two templates also go through a real host, whose routes must feed llama.cpp the same tokens.
"""

from __future__ import annotations

import jinja2
import llama_cpp
import pytest

from engine.runtime.generation import render_prompt
from engine.runtime.sampling import Sampling
from engine.runtime.supervisor import HostSettings, RuntimeHost
from engine.runtime.templates import (
    SYSTEM_IN_USER_NOTICE,
    ChatTemplate,
    choose_renderer,
    fold_system_into_first_user,
    special_tokens,
)
from tests.support.gguf_files import copy_with_chat_template  # noqa: E402
from tests.support.template_reference import (  # noqa: E402
    TEMPLATE_DIR,
    gguf_special_tokens,
    host_post,
    read_template,
    reference_prompt,
    reference_tokens,
    template_names,
)

pytestmark = pytest.mark.timeout(180)

# The templates that refuse a system message (raise_exception) or render it as nothing.
NO_SYSTEM_ROLE = {"gemma-instruct", "mistral-7b-instruct-v0.1", "mixtral-8x7b-instruct-v0.1",
                  "starcoder2-instruct", "phi-3-user-assistant"}

SYSTEM = {"role": "system", "content": 'You are a pirate. Keep <tags> & "quotes" as they are.'}
HISTORY = [
    {"role": "user", "content": "Hello there, ça va? "},
    {"role": "assistant", "content": "  Arr, fine, matey.  "},
    {"role": "user", "content": "Tell me a joke about a 🦜."},
]
CONVERSATIONS = {
    "system+history": [SYSTEM, *HISTORY],
    "history": HISTORY,
    "system+first": [SYSTEM, HISTORY[0]],
    "first": [HISTORY[0]],
}


def as_ember_sends_it(name: str, messages: list[dict]) -> list[dict]:
    """What the reference renders: for a family without a system role, the system text, a blank line, the first user text."""
    if name not in NO_SYSTEM_ROLE or messages[0]["role"] != "system":
        return messages
    first_user = {"role": "user", "content": messages[0]["content"] + "\n\n" + messages[1]["content"]}
    return [first_user, *messages[2:]]


@pytest.fixture(scope="module")
def special(smollm2_path):
    return gguf_special_tokens(smollm2_path)


@pytest.fixture(scope="module")
def tokenizers(smollm2_path, tmp_path_factory):
    """Per template, llama.cpp's tokenizer of a metadata-only copy of SmolLM2 holding that template."""
    folder = tmp_path_factory.mktemp("template-vocab")
    models = {}
    for name in template_names():
        path = copy_with_chat_template(smollm2_path, folder / f"{name}.gguf", read_template(name), tensors=False)
        models[name] = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
    yield models
    for model in models.values():
        model.close()


def test_at_least_ten_families_are_collected_and_listed():
    names = template_names()
    readme = (TEMPLATE_DIR / "README.md").read_text(encoding="utf-8")
    assert len(names) >= 10
    assert all(f"`{name}.jinja`" in readme for name in names)
    assert NO_SYSTEM_ROLE <= set(names)


@pytest.mark.parametrize("conversation", list(CONVERSATIONS))
@pytest.mark.parametrize("name", template_names())
def test_prompt_tokens_equal_the_reference_rendering(name, conversation, tokenizers, special):
    llama = tokenizers[name]
    renderer = choose_renderer(llama, None)
    assert renderer.kind == "gguf", renderer.notice
    assert renderer.system_in_user == (name in NO_SYSTEM_ROLE)
    messages = CONVERSATIONS[conversation]

    text, tokens, stops = render_prompt(llama, renderer, messages)

    expected = reference_prompt(read_template(name), as_ember_sends_it(name, messages), special)
    assert text == expected
    assert tokens == reference_tokens(llama, expected)
    assert stops == [special["eos_token"]]
    assert renderer.folds_system(messages) == (name in NO_SYSTEM_ROLE and messages[0]["role"] == "system")


def test_templates_get_the_special_tokens_hf_would_pass(tokenizers, special):
    assert special_tokens(tokenizers["smollm2-instruct"]) == special
    assert set(special) == {"bos_token", "eos_token", "unk_token", "pad_token"}


def test_a_template_without_a_system_role_says_so_once_in_its_notice(tokenizers):
    refusing = choose_renderer(tokenizers["gemma-instruct"], None)
    accepting = choose_renderer(tokenizers["llama-3.1-instruct"], None)
    assert refusing.system_notice == SYSTEM_IN_USER_NOTICE and refusing.notice is None
    assert accepting.system_notice is None and not accepting.system_in_user


TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather <b>now</b> in a city, e.g. Zürich & Genève",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


@pytest.mark.parametrize("name", ["qwen2.5-instruct", "llama-3.1-instruct", "qwen3"])
def test_tools_go_through_a_tojson_that_keeps_html_and_accents(name, special):
    template = read_template(name)
    messages = [{"role": "user", "content": "Weather in Zürich?"}]
    rendered = ChatTemplate(template, special).render(messages, tools=TOOLS)
    assert rendered == reference_prompt(template, messages, special, tools=TOOLS)
    assert "<b>now</b>" in rendered and "Zürich & Genève" in rendered


RULES = {
    "trim_blocks and lstrip_blocks": "{% for m in messages %}\n    {% if m.role == 'user' %}\n  U: {{ m.content }}\n"
                                     "    {% endif %}\n{% endfor %}",
    "loop controls": "{% for m in messages %}{% if loop.index > 2 %}{% break %}{% endif %}"
                     "{% if m.role == 'assistant' %}{% continue %}{% endif %}{{ m.content }};{% endfor %}",
    "tojson and its arguments": "{{ messages | tojson }}|{{ messages[0] | tojson(indent=2, sort_keys=true) }}|"
                                "{{ {'a': '<&>', 'b': 'é'} | tojson(separators=(',', ':')) }}",
    "strftime_now": "{{ strftime_now('%Y-%m-%d') }}",
    "generation block": "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}"
                        "{% endgeneration %}{% else %}{{ m.content }}{% endif %}{% endfor %}",
    "namespace and dict": "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}"
                          "{{ ns.n }} {{ dict(a=1) }} {{ dict.fromkeys(['x']) }}",
    "the variables HF passes": "{{ bos_token }}|{{ eos_token }}|{{ unk_token }}|{{ pad_token }}|"
                               "{{ add_generation_prompt }}|{{ tools }}|{{ documents }}",
    "a final newline is dropped": "{{ messages[0].content }}\n",
}


@pytest.mark.parametrize("rule", list(RULES))
def test_jinja_rules_are_those_of_apply_chat_template(rule, special):
    template = RULES[rule]
    assert ChatTemplate(template, special).render(HISTORY) == reference_prompt(template, HISTORY, special)


def test_raise_exception_refuses_as_in_transformers(special):
    template = "{{ raise_exception('Only user and assistant roles are supported!') }}"
    with pytest.raises(jinja2.TemplateError, match="Only user and assistant"):
        ChatTemplate(template, special).render(HISTORY)
    with pytest.raises(jinja2.TemplateError, match="Only user and assistant"):
        reference_prompt(template, HISTORY, special)


@pytest.mark.parametrize("template", [
    "{% set ns = namespace() %}{% set ns._secret = 1 %}",
    "{% set ns = namespace(_secret=1) %}",
    "{{ dict.__class__.__subclasses__() }}",
    "{{ ''.__class__.__mro__ }}",
])
def test_the_sandbox_refuses_underscore_names(template, special):
    with pytest.raises(jinja2.exceptions.SecurityError):
        ChatTemplate(template, special).render(HISTORY)


def test_only_a_template_that_renders_no_sample_is_broken(special):
    refuses_all = ChatTemplate("{{ raise_exception('never') }}", special)
    assert "never" in refuses_all.probe() and refuses_all.system_supported is None
    refuses_system = ChatTemplate(read_template("mistral-7b-instruct-v0.1"), special)
    assert refuses_system.probe() is None and refuses_system.system_supported is False
    drops_system = ChatTemplate(read_template("phi-3-user-assistant"), special)
    assert drops_system.probe() is None and drops_system.system_supported is False
    unfinished = ChatTemplate("{% for m in messages %}", special)
    assert unfinished.error.startswith("the chat template does not compile")
    assert unfinished.probe().startswith("the chat template failed")


def test_the_system_prompt_goes_to_the_start_of_the_first_user_message():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "assistant", "content": "Hi."},
                {"role": "user", "content": "Why?"}, {"role": "user", "content": "Really?"}]
    folded = fold_system_into_first_user(messages)
    assert folded == [{"role": "assistant", "content": "Hi."}, {"role": "user", "content": "Be brief.\n\nWhy?"},
                      {"role": "user", "content": "Really?"}]
    assert messages[2]["content"] == "Why?", "the caller's messages changed"
    two = fold_system_into_first_user([{"role": "system", "content": "A."}, {"role": "system", "content": "B."},
                                       {"role": "user", "content": "Q"}])
    assert two == [{"role": "user", "content": "A.\n\nB.\n\nQ"}]
    assert fold_system_into_first_user([{"role": "system", "content": "Only me."}]) == [
        {"role": "user", "content": "Only me."}]
    assert fold_system_into_first_user([{"role": "system", "content": ""}, {"role": "user", "content": "Q"}]) == [
        {"role": "user", "content": "Q"}]


HOST_TEMPLATES = ["gemma-instruct", "llama-3.1-instruct"]


@pytest.fixture(scope="module")
def full_copies(smollm2_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("template-models")
    return {name: copy_with_chat_template(smollm2_path, folder / f"{name}.gguf", read_template(name))
            for name in HOST_TEMPLATES}


@pytest.mark.parametrize("name", HOST_TEMPLATES)
def test_the_host_feeds_llama_cpp_the_reference_tokens(name, full_copies, tokenizers, special, tmp_path):
    messages = CONVERSATIONS["system+history"]
    folds = name in NO_SYSTEM_ROLE
    expected = reference_tokens(tokenizers[name],
                                reference_prompt(read_template(name), as_ember_sends_it(name, messages), special))
    settings = HostSettings(model_path=str(full_copies[name]), context_length=512, gpu_layers=0, threads=1)
    with RuntimeHost(settings, log_dir=tmp_path) as host:
        assert host.template == "gguf"
        assert host.info["system_in_user"] is folds
        assert host.info["system_notice"] == (SYSTEM_IN_USER_NOTICE if folds else None)
        client = host.client()

        shown = host_post(client, "/ember/prompt", {"messages": messages})
        assert shown["tokens"] == expected
        assert shown["system_in_user"] is folds
        assert client.count_tokens(messages) == len(expected)
        start = host_post(client, "/ember/chat", {"messages": messages, "sampling": Sampling(max_tokens=2).to_dict()},
                          first_line_only=True)["start"]
        assert start["prompt_tokens"] == len(expected) and start["system_in_user"] is folds
        # Other programs' /v1 route renders with the same rules and folds the same way.
        answer = host_post(client, "/v1/chat/completions", {"messages": messages, "max_tokens": 1})
        assert answer["usage"]["prompt_tokens"] == len(expected)
        text = "".join(event.text for event in client.stream_chat(messages, Sampling(max_tokens=4, seed=1))
                       if event.stats is None)
        assert text.strip()
