"""Hostile, broken, endless and missing chat templates: the model still loads, nothing escapes, the user is told."""

from __future__ import annotations

import pytest

from engine.runtime.sampling import Sampling
from engine.runtime.supervisor import HostSettings, RuntimeHost
from tests.support.gguf_files import copy_with_chat_template

pytestmark = pytest.mark.timeout(180)

HELLO = [{"role": "user", "content": "Say hello"}]


def reply(host):
    text, stats = [], None
    for event in host.client().stream_chat(HELLO, Sampling(max_tokens=12, seed=1)):
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
        "endless": "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}x"
                   "{% endfor %}{% endfor %}{% endfor %}",
        "none": None,
    }
    paths = {name: copy_with_chat_template(smollm2_path, folder / f"{name}.gguf", t) for name, t in templates.items()}
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


def test_template_that_never_ends_is_stopped_and_replaced(template_models, tmp_path):
    paths, _ = template_models
    with start(paths["endless"], tmp_path) as host:
        assert host.template == "fallback:chatml"
        assert "2 s" in host.notice
        text, stats = reply(host)
        assert stats.completion_tokens > 0


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
