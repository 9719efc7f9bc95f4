"""Hostile chat templates: nothing escapes the sandbox, nothing hangs or fills the memory, the model still loads.

A GGUF's template is code from the model's author. Ember compiles and renders it in the template child
(engine/runtime/template_process.py): a memory limit, its text counted, a deadline enforced by
killing that process. The fast cases run the template process directly; the others load the real
model with the hostile template in a runtime host and check that the user gets a reply and a notice.
"""

from __future__ import annotations

import jinja2
import pytest
from jinja2.sandbox import SecurityError

from engine.runtime.sampling import Sampling
from engine.runtime.supervisor import HostSettings, RuntimeHost
from engine.runtime.template_child import MAX_OUTPUT_CHARS
from engine.runtime.template_process import (
    TemplateProcess,
    TemplateTimeout,
    shared_template_process,
)
from engine.runtime.templates import ChatTemplate
from tests.support.gguf_files import copy_with_chat_template

pytestmark = pytest.mark.timeout(180)

HELLO = [{"role": "user", "content": "Say hello"}]
SPECIAL = {"bos_token": "<s>", "eos_token": "</s>"}
CHATML = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

# Each escape must be refused by the sandbox (SecurityError) or render without reaching Python's internals.
ESCAPES = {
    "str.__class__.__mro__": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "cycler.__init__.__globals__": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "joiner.__init__.__globals__": "{{ joiner.__init__.__globals__ }}",
    "namespace.__init__.__globals__": "{{ namespace.__init__.__globals__ }}",
    "attr('__class__')": "{{ (''|attr('__class__')).__mro__ }}",
    "attr('format') on a format string": "{{ ('{0.__class__.__mro__}'|attr('format'))(1) }}",
    "str.format reaching __globals__": "{{ '{0.__init__.__globals__}'.format(cycler) }}",
    "format_map": "{{ '{x.__class__}'.format_map({'x': 1}) }}",
    "dict.__class__": "{{ dict.__class__.__subclasses__() }}",
    "a namespace '_' attribute": "{% set ns = namespace() %}{% set ns.__class__ = 1 %}",
    "messages mutated": "{% set _ = messages.append(1) %}{{ messages|length }}",
}


@pytest.fixture
def process() -> TemplateProcess:
    """The test process's one template child (as in a host: kept from render to render)."""
    return shared_template_process()


def render(process: TemplateProcess, source: str, messages=HELLO) -> str:
    return process.render(source, {"messages": messages, "add_generation_prompt": True, **SPECIAL})


@pytest.mark.parametrize("name", list(ESCAPES))
def test_a_sandbox_escape_is_refused(process, name):
    try:
        text = render(process, ESCAPES[name])
    except SecurityError:
        return
    assert "class '" not in text and "<module" not in text and "uid=" not in text and "builtins" not in text, text


def test_a_template_that_loops_for_ever_is_killed_at_the_deadline_and_the_next_render_works(process):
    endless = ("{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}"
               "{% endfor %}{% endfor %}{% endfor %}")
    starts = process.starts
    with pytest.raises(TemplateTimeout, match="took longer than 2 s"):
        render(process, endless)
    assert render(process, CHATML).endswith("<|im_start|>assistant\n")
    assert process.starts == starts + 1, "the stuck process was not replaced"


@pytest.mark.parametrize("source, says", [
    ("{% for a in range(100000) %}{% for b in range(100000) %}xxxxxxxxxx{% endfor %}{% endfor %}",
     f"passed {MAX_OUTPUT_CHARS:,} characters"),
    ("{{ 'x' * 1000000000 }}", "more memory"),  # one step; Jinja would even fold it while compiling
    ("{{ 'x'.ljust(2000000000) }}", "more memory"),
    # fits the memory limit, not the text limit (on a busy machine, filling 900 MB may pass the time limit first)
    ("{{ 'x'.ljust(900000000) }}", "characters|took longer"),
    ("{{ '%900000000s' % 'x' }}", "characters|more memory|took longer"),  # folding it takes seconds
])
def test_a_template_that_outputs_a_billion_characters_is_stopped(process, source, says):
    template = ChatTemplate(source, SPECIAL)  # compiled, then rendered, in the template child
    with pytest.raises(jinja2.TemplateError, match=says):
        template.render(HELLO)
    assert render(process, "{{ messages[0].content }}") == "Say hello"


def test_a_syntax_error_is_a_clear_compile_error():
    template = ChatTemplate("{% for message in messages %}{{ message.content ", SPECIAL)
    assert template.error.startswith("the chat template does not compile")
    assert template.probe().startswith("the chat template failed: the chat template does not compile")
    with pytest.raises(jinja2.TemplateError, match="does not compile"):
        template.render(HELLO)


ROLE_ORDER = ("{% for m in messages %}{% if (m.role == 'user') != (loop.index0 % 2 == 0) %}"
              "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
              "{% endif %}[{{ m.role }}] {{ m.content }}\n{% endfor %}")


def test_a_template_that_raises_on_role_order_is_kept_and_says_why_it_refuses():
    template = ChatTemplate(ROLE_ORDER, SPECIAL)
    assert template.probe() is None, "a template that refuses some orders is not broken"
    with pytest.raises(jinja2.TemplateError, match="roles must alternate"):
        template.render([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
    assert template.render(HELLO) == "[user] Say hello\n"


def test_at_start_up_a_stopped_template_means_the_built_in_format_with_its_reason():
    endless = ChatTemplate("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
                           SPECIAL)
    assert endless.probe() == "the chat template took longer than 2 s to render and was stopped"
    huge = ChatTemplate("{{ 'x' * 1000000000 }}", SPECIAL)
    assert "more memory" in huge.probe()


# -- the same templates in a real model, loaded in a runtime host -------------------------------

def reply(host, messages=HELLO):
    text, stats = [], None
    for event in host.client().stream_chat(messages, Sampling(max_tokens=12, seed=1)):
        if event.stats:
            stats = event.stats
        else:
            text.append(event.text)
    return "".join(text), stats


@pytest.fixture(scope="module")
def template_models(smollm2_path, tmp_path_factory):
    """Copies of the real model with other templates (written once: each copy is ~100 MB)."""
    folder = tmp_path_factory.mktemp("templates")
    marker = folder / "escaped.txt"
    templates = {
        "escape": "{{ ''.__class__.__mro__[1].__subclasses__() }}"
                  "{{ cycler.__init__.__globals__.os.system('touch " + str(marker) + "') }}",
        "syntax": "{% for message in messages %}{{ message.content ",
        "endless": "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}"
                   "{% endfor %}{% endfor %}{% endfor %}",
        "billion": "{% for a in range(100000) %}{% for b in range(100000) %}xxxxxxxxxx{% endfor %}{% endfor %}",
        "role order": "<|im_start|>" + ROLE_ORDER + "<|im_end|>",
        "none": None,
    }
    paths = {name: copy_with_chat_template(smollm2_path, folder / f"{name.replace(' ', '_')}.gguf", t)
             for name, t in templates.items()}
    return paths, marker


def start(path, tmp_path, **settings):
    return RuntimeHost(HostSettings(model_path=str(path), context_length=512, gpu_layers=0, threads=1, **settings),
                       log_dir=tmp_path)


def test_template_that_tries_to_escape_the_sandbox_runs_no_code(template_models, tmp_path):
    paths, marker = template_models
    with start(paths["escape"], tmp_path) as host:
        assert host.template == "fallback:chatml"
        assert "template" in host.notice
        text, stats = reply(host)
    assert not marker.exists(), "the template ran code"
    assert stats.stop_reason in ("stop", "length")


def test_template_with_a_syntax_error_still_loads_with_the_builtin_format(template_models, tmp_path):
    paths, _ = template_models
    with start(paths["syntax"], tmp_path) as host:
        assert host.template == "fallback:chatml"
        assert "compile" in host.notice
        text, stats = reply(host)
        assert text.strip()


@pytest.mark.parametrize("name, says", [("endless", "took longer than 2 s"), ("billion", "characters")])
def test_template_that_never_ends_or_never_stops_writing_is_stopped_and_replaced(template_models, tmp_path,
                                                                                  name, says):
    paths, _ = template_models
    with start(paths[name], tmp_path) as host:
        pid = host.pid
        assert host.template == "fallback:chatml"
        assert says in host.notice and "built-in chatml format" in host.notice, host.notice
        text, stats = reply(host)
        assert stats.completion_tokens > 0
        assert host.pid == pid, "the host was restarted: the template should cost one render, not the process"


def test_template_that_refuses_the_role_order_says_so_and_the_host_goes_on(template_models, tmp_path):
    paths, _ = template_models
    with start(paths["role order"], tmp_path) as host:
        assert host.template == "gguf"
        _, stats = reply(host, [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
        assert stats.stop_reason == "error" and "roles must alternate" in stats.error, stats
        _, stats = reply(host)
        assert stats.stop_reason in ("stop", "length")


def test_model_without_template_is_labelled_and_still_answers(template_models, tmp_path):
    paths, _ = template_models
    with start(paths["none"], tmp_path) as host:
        assert host.template == "none"
        assert "no chat template" in host.notice
        text, stats = reply(host)
        assert stats.completion_tokens > 0 or stats.stop_reason == "stop"
    with start(paths["none"], tmp_path, chat_format="chatml") as host:  # the user picks a format
        assert host.template == "fallback:chatml"
        text, stats = reply(host)
        assert text.strip()
