"""Ember's chat stream on its own port (engine/runtime/stream_server.py), on the real SmolLM2 host:
what it refuses and how, that it shares the model with the /v1 routes one reply at a time, and that
a client who leaves, even while waiting for the model, leaves the host serving."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest

from engine.runtime.sampling import Sampling

pytestmark = pytest.mark.timeout(120)

HELLO = [{"role": "user", "content": "Say hello"}]
LONG = [{"role": "user", "content": "Write a very long story about a dragon."}]
NOISE = Sampling(max_tokens=400, temperature=3.0, top_k=0, top_p=1.0, min_p=0.0, seed=5)  # no early end


def stream_request(host, method: str, path: str, body: bytes | None, headers: dict) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", host.info["stream_port"], timeout=30)
    try:
        conn.request(method, path, body, headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    return response.status, data


def auth(host) -> dict:
    return {"Authorization": f"Bearer {host.token}", "Content-Type": "application/json"}


def test_the_stream_has_its_own_loopback_port(shared_host):
    port = shared_host.info["stream_port"]
    assert isinstance(port, int) and port not in (0, shared_host.port)
    body = json.dumps({"messages": HELLO, "sampling": Sampling(max_tokens=2).to_dict()}).encode()
    status, answer = stream_request(shared_host, "POST", "/ember/chat", body, auth(shared_host))
    assert status == 200
    lines = [json.loads(line) for line in answer.splitlines()]
    assert "start" in lines[0] and "done" in lines[-1], lines


@pytest.mark.parametrize("headers, body, path, status, says", [
    ({}, {"messages": HELLO}, "/ember/chat", 401, "bearer token"),
    ({"Authorization": "Bearer wrong"}, {"messages": HELLO}, "/ember/chat", 401, "bearer token"),
    (None, b"{not json", "/ember/chat", 400, "not JSON"),
    (None, {"messages": []}, "/ember/chat", 400, "non-empty list"),
    (None, {"messages": [{"role": "robot", "content": "hi"}]}, "/ember/chat", 400, "role"),
    (None, {"messages": HELLO}, "/v1/chat/completions", 404, "this port serves POST /ember/chat"),
])
def test_bad_requests_are_refused_with_a_reason(shared_host, headers, body, path, status, says):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    got, answer = stream_request(shared_host, "POST", path, raw, auth(shared_host) if headers is None else headers)
    assert got == status
    assert says in json.loads(answer)["error"]


def test_a_request_too_large_or_without_a_length_is_refused_before_it_is_read(shared_host):
    port = shared_host.info["stream_port"]
    for length_header, status in ((f"Content-Length: {64 * 1024 * 1024}\r\n", b" 413 "), ("", b" 411 ")):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(f"POST /ember/chat HTTP/1.1\r\nAuthorization: Bearer {shared_host.token}\r\n"
                         f"{length_header}\r\n".encode())
            head = sock.recv(4096)
        assert status in head.split(b"\r\n")[0], head
    assert stream_request(shared_host, "GET", "/ember/chat", None, auth(shared_host))[0] == 501


def test_a_reply_and_a_v1_request_take_turns_on_the_model(shared_host):
    """The stream holds the same lock as llama-cpp-python's routes: a /v1 request sent during a reply is
    answered after the reply's last line, never beside it on the same context."""
    client = shared_host.client()
    finished: dict[str, float] = {}

    def v1() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", shared_host.port, timeout=60)
        conn.request("POST", "/v1/completions", json.dumps({"prompt": "Hi", "max_tokens": 2}), auth(shared_host))
        assert conn.getresponse().status == 200
        finished["v1"] = time.perf_counter()
        conn.close()

    other = threading.Thread(target=v1)
    for event in client.stream_chat(LONG, Sampling(max_tokens=60, temperature=3.0, top_k=0, top_p=1.0, min_p=0.0,
                                                   seed=5)):
        if event.stats is None and other.ident is None:
            other.start()  # sent while the reply streams
        if event.stats is not None:
            finished["reply"] = time.perf_counter()
            assert event.stats.completion_tokens == 60
    other.join(60)
    assert finished["reply"] < finished["v1"]


def test_a_client_that_leaves_while_waiting_for_the_model_leaves_the_host_serving(shared_host):
    client = shared_host.client()
    body = json.dumps({"messages": LONG, "sampling": NOISE.to_dict()}).encode()
    first = socket.create_connection(("127.0.0.1", shared_host.info["stream_port"]), timeout=30)
    waiting = socket.create_connection(("127.0.0.1", shared_host.info["stream_port"]), timeout=30)
    try:
        for sock in (first, waiting):
            sock.sendall(b"POST /ember/chat HTTP/1.1\r\nAuthorization: Bearer " + shared_host.token.encode()
                         + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        assert b" 200 " in first.recv(4096).split(b"\r\n")[0]  # the first holds the model
        waiting.close()  # the second leaves while it waits
        first.close()  # and the first leaves mid-reply
        text = "".join(e.text for e in client.stream_chat(HELLO, Sampling(max_tokens=6, seed=1)) if e.stats is None)
        assert text.strip()
    finally:
        first.close()
        waiting.close()
