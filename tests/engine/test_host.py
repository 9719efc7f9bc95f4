"""The runtime host on the real SmolLM2 model: streaming, cancel, auth, KV reuse, death and restart."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from engine.errors import BadModelFile, HostDied
from engine.jobs import CancelToken
from engine.runtime.hardware import GpuInfo, HardwareInfo, probe_hardware
from engine.runtime.sampling import Sampling
from engine.runtime.supervisor import HostSettings, RuntimeHost, flash_attention_used

pytestmark = pytest.mark.timeout(120)

HELLO = [{"role": "user", "content": "Say hello"}]


def collect(events):
    text, stats = [], None
    for event in events:
        if event.stats is not None:
            stats = event.stats
        else:
            text.append(event.text)
    return "".join(text), stats


def test_streams_a_reply_with_stats(host_client):
    chunks = []
    stats = None
    for event in host_client.stream_chat(HELLO, Sampling(max_tokens=24, seed=7)):
        if event.stats:
            stats = event.stats
        else:
            chunks.append(event.text)
    assert "".join(chunks).strip(), "the model said nothing"
    assert stats.stop_reason in ("stop", "length")
    assert 0 < stats.completion_tokens <= 24
    assert stats.prompt_tokens > 5
    assert stats.ttft_s is not None and stats.ttft_s > 0
    assert stats.seed == 7


def test_same_seed_gives_same_text(host_client):
    sampling = Sampling(max_tokens=20, seed=1234, temperature=0.9)
    first, _ = collect(host_client.stream_chat(HELLO, sampling))
    second, _ = collect(host_client.stream_chat(HELLO, sampling))
    assert first == second


def test_max_tokens_ends_with_length(host_client):
    text, stats = collect(host_client.stream_chat(
        [{"role": "user", "content": "Count from 1 to 100, separated by commas."}],
        Sampling(max_tokens=5, temperature=0.0)))
    assert stats.stop_reason == "length"
    assert stats.completion_tokens == 5


def test_stop_string_ends_the_reply_before_it(host_client):
    messages = [{"role": "user", "content": "Count from 1 to 20, separated by commas."}]
    text, stats = collect(host_client.stream_chat(messages, Sampling(max_tokens=80, temperature=0.0, stop=("5",))))
    assert stats.stop_reason == "stop"
    assert "5" not in text


def test_cancel_mid_reply_returns_fast_and_host_stays_usable(host_client):
    cancel = CancelToken()
    events = host_client.stream_chat(
        [{"role": "user", "content": "Write a very long story about a dragon."}],
        Sampling(max_tokens=2000, temperature=0.8, seed=3), cancel)
    received = []
    for event in events:
        if event.stats:
            stats = event.stats
            break
        received.append(event.text)
        if len(received) == 5:
            cancelled_at = time.perf_counter()
            cancel.cancel()
    returned_after = time.perf_counter() - cancelled_at
    assert stats.stop_reason == "cancelled"
    assert returned_after < 0.5
    assert len(received) <= 5 + 3  # at most a few more batches after cancel
    # the next request is served normally
    text, stats = collect(host_client.stream_chat(HELLO, Sampling(max_tokens=8)))
    assert stats.stop_reason in ("stop", "length") and text


def test_kv_cache_is_reused_across_turns(host_client):
    """Turn 10 evaluates only the new tokens (+ a few for the template), not the whole history."""
    messages = [{"role": "system", "content": "You are brief."}]
    last = None
    for turn in range(10):
        messages.append({"role": "user", "content": f"Give me one word about the number {turn}."})
        new_tokens = host_client.count_tokens(messages) - host_client.count_tokens(messages[:-1])
        text, last = collect(host_client.stream_chat(messages, Sampling(max_tokens=12, seed=turn, temperature=0.0)))
        messages.append({"role": "assistant", "content": text})
    assert last.prompt_tokens > 150
    assert last.evaluated_prompt_tokens <= new_tokens + 16, (last, new_tokens)


def test_prompt_longer_than_context_is_a_clear_error(host_client):
    long = "word " * 3000
    text, stats = collect(host_client.stream_chat([{"role": "user", "content": long}], Sampling(max_tokens=4)))
    assert stats.stop_reason == "error"
    assert "context" in stats.error


def test_request_without_or_with_wrong_token_is_refused(shared_host):
    """On the main port; the chat stream's own port refuses the same way (test_stream_server.py)."""
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        conn = http.client.HTTPConnection("127.0.0.1", shared_host.port, timeout=10)
        for path, method in (("/ember/count", "POST"), ("/v1/chat/completions", "POST"), ("/v1/models", "GET")):
            body = json.dumps({"messages": HELLO}) if method == "POST" else None
            conn.request(method, path, body, headers)
            response = conn.getresponse()
            response.read()
            assert response.status == 401, path
        conn.close()


def test_a_wrong_token_of_the_same_or_another_length_is_refused(shared_host):
    token = shared_host.token
    for wrong in ("x" * len(token), token[:-1] + chr(ord(token[-1]) ^ 1), token + "x", token[:-1]):
        conn = http.client.HTTPConnection("127.0.0.1", shared_host.port, timeout=10)
        conn.request("GET", "/v1/models", headers={"Authorization": f"Bearer {wrong}"})
        response = conn.getresponse()
        response.read()
        conn.close()
        assert response.status == 401, wrong


def test_openai_route_serves_other_programs(shared_host):
    conn = http.client.HTTPConnection("127.0.0.1", shared_host.port, timeout=60)
    conn.request("POST", "/v1/chat/completions", json.dumps({"messages": HELLO, "max_tokens": 8}),
                 {"Authorization": f"Bearer {shared_host.token}", "Content-Type": "application/json"})
    response = conn.getresponse()
    data = json.loads(response.read())
    conn.close()
    assert response.status == 200
    assert data["choices"][0]["message"]["content"]


def test_token_is_not_on_the_command_line(shared_host):
    cmdline = Path(f"/proc/{shared_host.pid}/cmdline").read_bytes().decode()
    assert shared_host.token not in cmdline


def test_flash_attention_stays_off_where_every_layer_runs_on_the_cpu(shared_host):
    """llama.cpp's CPU flash-attention kernel falls far behind past a short context
    (benchmarks/flash_attention.py), so the default asks for it but a CPU-only host does not use it."""
    assert shared_host.settings.flash_attention and shared_host.settings.gpu_layers == 0
    assert shared_host.info["flash_attn"] is False
    assert "--flash-attn" not in Path(f"/proc/{shared_host.pid}/cmdline").read_bytes().decode()


def test_layers_asked_for_a_gpu_this_machine_lacks_run_without_flash_attention(smollm2_path):
    if probe_hardware().backend != "CPU":
        pytest.skip("this machine has a GPU llama.cpp can use: the layers would go there")
    host = RuntimeHost(HostSettings(model_path=str(smollm2_path), gpu_layers=8))
    assert "--flash-attn" not in host._command()


CUDA_MACHINE = HardwareInfo(cpu_cores=8, ram_total=2**35, ram_available=2**34, gpu_offload_supported=True,
                            gpus=[GpuInfo(name="a CUDA GPU", vram_total=2**34, vram_free=2**33, backend="cuda")])


@pytest.mark.parametrize("layers, wanted, used", [(8, True, True), (-1, True, True), (8, False, False),
                                                   (0, True, False)])
def test_flash_attention_is_used_where_layers_run_on_a_gpu(layers, wanted, used):
    """A stand-in for a CUDA machine (none here): the choice, not llama.cpp's kernel, is what is tested."""
    assert flash_attention_used(wanted, layers, lambda: CUDA_MACHINE) is used


def error_after_the_host_gets(sig: signal.Signals, model_path, log_dir) -> HostDied:
    """Start a host, send its process `sig`, and return the error the next request raises."""
    settings = HostSettings(model_path=str(model_path), context_length=512, gpu_layers=0, threads=1)
    with RuntimeHost(settings, log_dir=log_dir) as host:
        client = host.client()
        os.kill(host.pid, sig)
        host._process.wait(timeout=10)
        with pytest.raises(HostDied) as info:
            collect(client.stream_chat(HELLO, Sampling(max_tokens=4)))
    return info.value


@pytest.mark.parametrize("sig, says, hint", [
    (signal.SIGKILL, "killed (SIGKILL", "memory"),
    # a segfault, as llama.cpp built for CPU features a VM cannot run gives: named, with the fix
    (signal.SIGSEGV, "llama.cpp crashed (SIGSEGV)", "If llama.cpp crashes"),
])
def test_a_dead_host_is_a_typed_error_that_says_why(smollm2_path, tmp_path, sig, says, hint):
    error = error_after_the_host_gets(sig, smollm2_path, tmp_path)
    assert says in error.message and hint in error.hint


def test_a_new_host_starts_after_one_was_killed(smollm2_path, tmp_path):
    error_after_the_host_gets(signal.SIGKILL, smollm2_path, tmp_path)
    settings = HostSettings(model_path=str(smollm2_path), context_length=512, gpu_layers=0, threads=1)
    with RuntimeHost(settings, log_dir=tmp_path) as again:
        text, stats = collect(again.client().stream_chat(HELLO, Sampling(max_tokens=4)))
        assert stats.completion_tokens > 0


def test_bad_file_is_a_typed_error_and_starts_no_process(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(os.urandom(4096))
    host = RuntimeHost(HostSettings(model_path=str(bad)), log_dir=tmp_path)
    with pytest.raises(BadModelFile):
        host.start_blocking()
    assert host.pid is None


def test_host_exits_when_its_parent_is_killed(smollm2_path, tmp_path):
    """A killed app leaves no host behind: the host exits when its stdin closes."""
    script = textwrap.dedent(f"""
        import sys, time
        from engine.runtime.supervisor import HostSettings, RuntimeHost
        host = RuntimeHost(HostSettings(model_path={str(smollm2_path)!r}, context_length=256, gpu_layers=0, threads=1))
        host.start_blocking()
        print(host.pid, flush=True)
        time.sleep(600)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    with parent.stdout:
        host_pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(host_pid):
        time.sleep(0.1)
    assert not _alive(host_pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_concurrent_requests_are_served_one_after_the_other(host_client):
    results = []

    def ask():
        results.append(collect(host_client.stream_chat(HELLO, Sampling(max_tokens=6)))[1].stop_reason)

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) and all(r in ("stop", "length") for r in results) and len(results) == 3
