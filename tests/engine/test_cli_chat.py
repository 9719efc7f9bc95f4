"""`ember chat` and `ember serve` from a terminal, as a script would use them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


def ember(*args, timeout=90):
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, env=dict(os.environ))


def test_chat_streams_a_reply(smollm2_path):
    result = ember("chat", "--model", str(smollm2_path), "--threads", "1", "--ctx", "512",
                   "--max-tokens", "16", "--seed", "3", "Say hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_chat_json_has_the_documented_fields(smollm2_path, ember_home):
    result = ember("chat", "--model", str(smollm2_path), "--threads", "1", "--ctx", "512",
                   "--max-tokens", "8", "--seed", "3", "--json", "--system", "Be brief.", "Say hello")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= {"text", "prompt_tokens", "completion_tokens", "ttft_s", "tokens_per_s", "stop_reason"}
    assert data["stop_reason"] in ("stop", "length")
    assert 0 < data["completion_tokens"] <= 8
    assert not (ember_home / "ember.db").exists(), "ember chat must not write the database"


def test_chat_with_a_bad_model_file_is_one_line_no_traceback(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + os.urandom(100))
    result = ember("chat", "--model", str(bad), "hi")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("ember: ")
    result = ember("chat", "--model", str(bad), "--json", "hi")
    assert result.returncode == 1
    assert set(json.loads(result.stdout)) == {"error", "hint"}


def test_usage_errors_exit_2():
    assert ember("chat").returncode == 2
    assert ember("chat", "--model", "x.gguf", "--gpu-layers", "lots", "hi").returncode == 1


def test_serve_refuses_a_public_address_without_an_api_key(smollm2_path):
    result = ember("serve", "--model", str(smollm2_path), "--host", "0.0.0.0")
    assert result.returncode == 1
    assert "--api-key" in result.stderr


def test_version():
    result = ember("--version")
    assert result.returncode == 0 and result.stdout.startswith("ember ")


def test_serve_prints_a_key_and_answers_openai_clients_with_it(smollm2_path, minilm_gguf):
    """`ember serve` with a chat and an embedding model, used with the official OpenAI client."""
    import re
    import signal

    import openai

    process = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "serve", "--model", str(smollm2_path), "--port", "0",
         "--threads", "1", "--ctx", "512", "--embedding-model", str(minilm_gguf)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [process.stdout.readline() for _ in range(4)]
        port = int(re.search(r":(\d+)/v1", lines[0]).group(1))
        key = next(line for line in lines if "API key:" in line).split("API key:")[1].strip()
        base = f"http://127.0.0.1:{port}/v1"
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=base, api_key="ember-not-the-key-at-all", max_retries=0).models.list()
        client = openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=60)
        assert [m.id for m in client.models.list().data] == [smollm2_path.stem, minilm_gguf.stem]
        reply = client.chat.completions.create(model=smollm2_path.stem, max_tokens=8, temperature=0,
                                               messages=[{"role": "user", "content": "Say hi"}])
        assert reply.choices[0].message.content
        assert len(client.embeddings.create(model=minilm_gguf.stem, input="a bridge").data[0].embedding) == 384
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0


def test_ember_entry_point_runs_commands_without_loading_qt(smollm2_path):
    code = ("import sys; sys.modules['PySide6'] = None\n"
            "from app.__main__ import main\n"
            f"sys.exit(main(['inspect', {str(smollm2_path)!r}, '--json']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["quantization"] == "Q4_1"
