"""`ember finetune` from a terminal: the round trip with --json, chat with the adapter, the job taken to
another machine and its adapter imported back, and bad input refused with a reason."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.finetune_fixtures import FACT_DOCUMENT, FACT_PAIRS

pytestmark = pytest.mark.timeout(900)


def ember(*args, timeout=600):
    result = subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True,
                            timeout=timeout)
    return result.returncode, result.stdout, result.stderr


def write_inputs(tmp_path):
    (tmp_path / "velkaran.md").write_text(FACT_DOCUMENT, encoding="utf-8")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in FACT_PAIRS), encoding="utf-8")
    return tmp_path / "velkaran.md", pairs


@pytest.mark.slow
def test_finetune_json_then_chat_with_the_adapter(tmp_path, smollm2_path, shared_dense):
    document, pairs = write_inputs(tmp_path)
    code, out, err = ember("finetune", "--model", str(smollm2_path), "--data", str(document), "--pairs", str(pairs),
                           "--steps", "3", "--rank", "4", "--batch", "2", "--seq-len", "64", "--threads", "2",
                           "--probe", "Who built the Velkaran Bridge?", "--out", str(tmp_path / "out"), "--json")
    lines = out.strip().splitlines()
    assert len(lines) == 1, out  # with --json, stdout is the one JSON object; progress went to stderr
    result = json.loads(lines[0])
    assert code in (0, 1), err
    assert set(result) >= {"adapter", "train_loss", "eval_loss", "steps", "seconds", "self_test"}
    assert result["steps"] == 3 and result["adapter"].startswith(str(tmp_path / "out"))
    checks = {c["name"]: c for c in result["self_test"]["checks"]}
    assert set(checks) == {"header", "agreement", "loads", "replies_end", "effect"}
    assert checks["header"]["passed"] and checks["loads"]["passed"] and checks["agreement"]["passed"]
    assert code == (0 if result["self_test"]["passed"] else 1)
    assert "Step 3 of 3" in err and "Backend: LoRA (CPU)" in err
    code, out, err = ember("chat", "--model", str(smollm2_path), "--lora", result["adapter"], "--lora-scale", "0.5",
                           "--threads", "1", "--ctx", "512", "--max-tokens", "8", "--temperature", "0", "--json", "Hi")
    assert code == 0, err
    assert json.loads(out)["completion_tokens"] > 0


@pytest.mark.slow
def test_a_job_exported_trained_elsewhere_and_imported_back(tmp_path, smollm2_path, shared_dense):
    document, pairs = write_inputs(tmp_path)
    folder = tmp_path / "job"
    code, out, err = ember("finetune", "export-job", "--model", str(smollm2_path), "--pairs", str(pairs),
                           "--rank", "4", "--seq-len", "64", "--batch", "2", "--out", str(folder), "--json")
    assert code == 0, err
    assert json.loads(out)["folder"] == str(folder)
    assert {p.name for p in folder.iterdir()} == {"train.jsonl", "held_out.jsonl", "config.json",
                                                  "train_elsewhere.py", "README.txt"}
    # "the bigger machine": the script as written, with the base model's transformers folder
    run = subprocess.run([sys.executable, str(folder / "train_elsewhere.py"), "--base", str(shared_dense["dense"]),
                          "--steps", "2"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (folder / "adapter" / "adapter_model.safetensors").is_file()
    code, out, err = ember("finetune", "import", str(folder / "adapter"), "--model", str(smollm2_path),
                           "--threads", "2", "--probe", "Who built the Velkaran Bridge?", "--json")
    result = json.loads(out)
    checks = {c["name"]: c["passed"] for c in result["self_test"]["checks"]}
    assert checks["header"] and checks["loads"] and checks["agreement"], err
    assert result["adapter"].endswith("adapter.gguf")


def test_bad_input_is_refused_with_a_reason(tmp_path, smollm2_path):
    code, _, err = ember("finetune", "--data", str(tmp_path))
    assert code == 2 and "--model" in err
    code, out, _ = ember("finetune", "--model", str(smollm2_path), "--data", str(tmp_path / "gone.md"), "--json")
    assert code == 1 and "does not exist" in json.loads(out)["error"]
    bad = tmp_path / "chats.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "Hi"}]}\nnot json\n', encoding="utf-8")
    code, out, _ = ember("finetune", "--model", str(smollm2_path), "--mode", "chat", "--data", str(bad), "--json")
    error = json.loads(out)
    assert code == 1 and "line 1" in error["error"] and "line 2" in error["error"]
    code, out, _ = ember("finetune", "--model", str(smollm2_path), "--pairs", str(bad), "--rank", "0", "--json")
    assert code == 1 and "Rank" in json.loads(out)["error"]
    code, out, _ = ember("finetune", "import", str(tmp_path), "--model", str(smollm2_path), "--json")
    assert code == 1 and "adapter_config.json" in json.loads(out)["error"]
