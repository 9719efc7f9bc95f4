"""Remote backends against another Ember server process on 127.0.0.1 (`ember serve`, the real SmolLM2):
models listed, a chat saved as with a local model, clear errors for a wrong key, a wrong address and
an unknown model, a server killed mid-reply keeps the partial reply, and `ember chat --endpoint`."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from engine.chat.conversation import Conversation, ModelIdentity
from engine.chat.turn import assemble_turn
from engine.paths import EmberPaths
from engine.remote.endpoints import Endpoint, RemoteFailed, list_models, load_endpoints, save_endpoint
from engine.remote.host import RemoteHost, is_remote
from engine.store.chats import ChatRepository
from engine.store.db import connect

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parents[2]


def start_server(model: Path) -> tuple[subprocess.Popen, int, str]:
    """`ember serve` in its own process; returns it, its port and its key."""
    process = subprocess.Popen([sys.executable, "-m", "engine.cli", "serve", "--model", str(model), "--port", "0",
                                "--threads", "1", "--ctx", "1024"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = [process.stdout.readline() for _ in range(3)]
    port = int(re.search(r":(\d+)/v1", lines[0]).group(1))
    key = next(line for line in lines if "API key:" in line).split("API key:")[1].strip()
    return process, port, key


@pytest.fixture(scope="module")
def other_ember(smollm2_path):
    process, port, key = start_server(smollm2_path)
    yield Endpoint("other", f"http://127.0.0.1:{port}", key).checked()
    process.send_signal(signal.SIGINT)
    process.wait(timeout=20)


@pytest.fixture
def repo(ember_home):
    conn = connect(EmberPaths(ember_home).db)
    yield ChatRepository(conn)
    conn.close()


def test_an_address_is_normalised_and_kept_in_the_settings(ember_home):
    paths = EmberPaths(ember_home).ensure()
    saved = save_endpoint(paths, Endpoint("box", "192.168.1.20:8080/", "k"))
    assert saved.url == "http://192.168.1.20:8080/v1"
    assert load_endpoints(paths) == [saved]
    with pytest.raises(Exception) as refused:
        save_endpoint(paths, Endpoint("", "http://x"))
    assert "name" in str(refused.value)


def test_models_are_listed_and_refusals_are_clear(other_ember, smollm2_path):
    assert list_models(other_ember) == [smollm2_path.stem]
    with pytest.raises(RemoteFailed) as wrong_key:
        list_models(Endpoint("other", other_ember.url, "ember-wrong-key-wrong-key"))
    assert "refused the API key" in wrong_key.value.message
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with pytest.raises(RemoteFailed) as nowhere:
        list_models(Endpoint("gone", f"http://127.0.0.1:{closed_port}/v1"))
    assert "cannot be reached" in nowhere.value.message and "server runs" in nowhere.value.hint
    with pytest.raises(RemoteFailed) as unknown:
        RemoteHost(other_ember, "gpt-4").start_blocking()
    assert "does not offer 'gpt-4'" in unknown.value.message and smollm2_path.stem in unknown.value.hint


def test_a_chat_through_the_remote_model_is_saved_like_a_local_one(other_ember, smollm2_path, repo, ember_home):
    host = RemoteHost(other_ember, smollm2_path.stem, context_length=1024)
    host.start_blocking()
    assert host.alive and is_remote(host.path)
    conversation = Conversation(EmberPaths(ember_home).db)
    session = repo.create_session(sampling={"max_tokens": 12, "temperature": 0.0, "seed": 1})
    client = host.client()
    turn = assemble_turn(client, conversation.request_send(session.id, "What is the capital of France?", 1024))
    assert turn.budget.history_tokens > 0  # an estimate before any usage figure came back
    pending = conversation.prepare_send(session.id, "What is the capital of France?",
                                        ModelIdentity(host.model, path=host.path))
    events = list(conversation.stream_reply(pending, client, turn.messages))
    stats = events[-1].stats
    reply = repo.get_message(pending.assistant_message_id)
    assert reply.status == "complete" and reply.content == "".join(e.text for e in events[:-1]) and reply.content
    assert stats.completion_tokens > 0 and stats.prompt_tokens > 0
    assert reply.provenance.model_path == host.path
    with pytest.raises(Exception) as no_adapter:
        host.use_adapter("/some/adapter.gguf", 1.0)
    assert "remote server" in str(no_adapter.value)


def test_a_server_killed_mid_reply_is_a_clear_error_and_the_partial_reply_is_kept(smollm2_path, repo, ember_home):
    process, port, key = start_server(smollm2_path)
    try:
        host = RemoteHost(Endpoint("box", f"http://127.0.0.1:{port}", key), smollm2_path.stem, 1024)
        host.start_blocking()
        conversation = Conversation(EmberPaths(ember_home).db)
        session = repo.create_session(sampling={"max_tokens": 400, "temperature": 0.7, "seed": 2})
        prompt = "Write a long story about a lighthouse keeper."
        client = host.client()
        turn = assemble_turn(client, conversation.request_send(session.id, prompt, 1024))
        pending = conversation.prepare_send(session.id, prompt, ModelIdentity(host.model, path=host.path))
        received = []
        with pytest.raises(RemoteFailed) as cut:
            for event in conversation.stream_reply(pending, client, turn.messages):
                received.append(event.text)
                if len(received) == 5:
                    process.kill()  # the other Ember dies (its model process follows it)
        assert "box" in cut.value.message and "kept" in cut.value.hint
        reply = repo.get_message(pending.assistant_message_id)
        assert reply.status == "error" and reply.content.startswith("".join(received[:5]))
        assert [m.role for m in repo.branch(session.id)] == ["user", "assistant"]
    finally:
        process.kill()
        process.wait(timeout=20)


def test_ember_chat_with_an_endpoint(other_ember, smollm2_path):
    result = subprocess.run([sys.executable, "-m", "engine.cli", "chat", "--endpoint", other_ember.url,
                             "--api-key", other_ember.api_key, "--remote-model", smollm2_path.stem,
                             "--max-tokens", "8", "--temperature", "0", "Say hi"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    missing = subprocess.run([sys.executable, "-m", "engine.cli", "chat", "--endpoint", other_ember.url, "Say hi"],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "--remote-model" in missing.stderr
