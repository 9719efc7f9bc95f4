"""`ember inspect`, run as a user would: a subprocess, its stdout, its exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def ember(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)


def test_json_describes_the_model(smollm2_path):
    result = ember("inspect", str(smollm2_path), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # stdout holds only the JSON
    assert data["architecture"] == "llama" and data["quantization"] == "Q4_1"
    assert isinstance(data["parameters"], int) and 130e6 < data["parameters"] < 140e6
    assert data["context_length"] == 8192 and data["has_chat_template"] is True
    assert data["file_size"] == smollm2_path.stat().st_size
    assert "chat_template" not in data and len(result.stdout) < 4000
    assert [m["context_length"] for m in data["memory"]] == [4096, 8192]
    assert data["memory"][1]["kv_cache"] == 2 * data["memory"][0]["kv_cache"]


def test_json_with_the_template(smollm2_path):
    result = ember("inspect", str(smollm2_path), "--json", "--with-template")
    assert result.returncode == 0, result.stderr
    assert "{% for message in messages %}" in json.loads(result.stdout)["chat_template"]


def test_text_table(smollm2_path):
    result = ember("inspect", str(smollm2_path))
    assert result.returncode == 0, result.stderr
    for expected in ("llama", "Q4_1", "134.5 M", "memory at 4096 ctx", "memory at 8192 ctx", "<|im_end|>"):
        assert expected in result.stdout


@pytest.mark.timeout(60)
@pytest.mark.parametrize("content, reason", [
    (b"nope" * 10, "not a GGUF file"),
    (b"GGUF" + (3).to_bytes(4, "little") + (2**62).to_bytes(8, "little") * 2, "2^62"),
    (b"", "empty"),
], ids=["not gguf", "absurd counts", "empty"])
def test_bad_file_exits_1_with_error_and_hint(tmp_path, content, reason):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(content)
    result = ember("inspect", str(bad), "--json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert set(data) == {"error", "hint"} and reason in data["error"] and data["hint"]
    result = ember("inspect", str(bad))
    assert result.returncode == 1 and result.stdout == ""
    assert reason in result.stderr and "Traceback" not in result.stderr


def test_missing_path_and_directory(tmp_path):
    result = ember("inspect", str(tmp_path / "missing.gguf"), "--json")
    assert result.returncode == 1 and "does not exist" in json.loads(result.stdout)["error"]
    result = ember("inspect", str(tmp_path), "--json")
    assert result.returncode == 1 and "not a file" in json.loads(result.stdout)["error"]


def test_usage_error_exits_2():
    result = ember("inspect")
    assert result.returncode == 2 and "usage" in result.stderr
