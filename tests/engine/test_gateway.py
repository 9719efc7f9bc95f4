"""Ember's local API server as other programs use it: the official OpenAI client against the gateway
over the real SmolLM2 host (and the real MiniLM embedding host), with the key, the model names, the
refusals, the request records and the fair queue."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import openai
import pytest

from engine.runtime.registry import HostRegistry, LoadedModel
from engine.server.fair_queue import FairQueue
from engine.server.gateway import Gateway, GatewaySettings, new_api_key

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def served(shared_host, embedding_host, smollm2_path, minilm_gguf):
    """A gateway on a free port over the session's chat and embedding hosts; its request records."""
    registry = HostRegistry()
    registry.put(LoadedModel("chat", shared_host, str(smollm2_path)))
    registry.put(LoadedModel("embedding", embedding_host, str(minilm_gguf)))
    records = []
    gateway = Gateway(registry, GatewaySettings(port=0, api_key=new_api_key()), on_request=records.append)
    gateway.start()
    yield gateway, registry, records
    gateway.stop()


def recorded(records, count: int) -> list:
    """The records once `count` are there (a request is recorded just after its answer is sent)."""
    deadline = time.monotonic() + 10
    while len(records) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return records


def client_for(gateway, key=None) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url(), api_key=key or gateway.settings.api_key, max_retries=0,
                         timeout=60)


def test_models_are_listed_by_name_never_by_path(served, smollm2_path):
    gateway, _registry, _records = served
    names = [m.id for m in client_for(gateway).models.list().data]
    assert names == [smollm2_path.stem, "all-MiniLM-L6-v2.f16"]
    assert not any("/" in name for name in names)


def test_chat_completions_streamed_and_not_and_the_records(served, smollm2_path):
    gateway, _registry, records = served
    client = client_for(gateway)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    whole = client.chat.completions.create(model=smollm2_path.stem, messages=messages, max_tokens=12,
                                           temperature=0, seed=3)
    assert whole.model == smollm2_path.stem  # the name, not the file's path
    assert whole.choices[0].message.content and whole.usage.completion_tokens > 0
    chunks = list(client.chat.completions.create(
        model=smollm2_path.stem, messages=messages, max_tokens=12, temperature=0, seed=3, stream=True))
    assert all(chunk.choices for chunk in chunks)  # the usage chunk the gateway asked for is not passed on
    pieces = [chunk.choices[0].delta.content or "" for chunk in chunks]
    assert "".join(pieces) == whole.choices[0].message.content  # greedy: the same reply either way
    with_usage = list(client.chat.completions.create(
        model=smollm2_path.stem, messages=messages, max_tokens=12, temperature=0, seed=3, stream=True,
        stream_options={"include_usage": True}))
    assert with_usage[-1].usage.completion_tokens == whole.usage.completion_tokens  # asked for: passed on
    completion = client.completions.create(model=smollm2_path.stem, prompt="The sky is", max_tokens=5,
                                           temperature=0)
    assert completion.choices[0].text
    chat_records = [r for r in recorded(records, 4) if r.endpoint == "/v1/chat/completions"]
    assert [r.status for r in chat_records] == [200, 200, 200]
    # streamed or not, the record counts the tokens (a piece may carry several), from the usage figures
    assert [r.tokens for r in chat_records] == [whole.usage.completion_tokens] * 3
    assert all(r.model == smollm2_path.stem and r.seconds > 0 for r in chat_records)


def test_embeddings_come_from_the_embedding_model(served):
    gateway, _registry, records = served
    answer = client_for(gateway).embeddings.create(model="all-MiniLM-L6-v2.f16", input=["a bridge", "a river"])
    assert len(answer.data) == 2 and len(answer.data[0].embedding) == 384
    assert recorded(records, 1)[-1].endpoint == "/v1/embeddings" and records[-1].status == 200


def test_a_json_schema_response_validates(served, smollm2_path):
    gateway, _registry, _records = served
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
              "required": ["city", "country"]}
    answer = client_for(gateway).chat.completions.create(
        model=smollm2_path.stem, max_tokens=60, temperature=0,
        messages=[{"role": "user", "content": "Name a city and its country as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": schema}})
    value = json.loads(answer.choices[0].message.content)
    assert isinstance(value["city"], str) and isinstance(value["country"], str)


def test_a_request_without_the_key_or_with_a_wrong_one_is_refused(served):
    gateway, _registry, records = served
    with pytest.raises(openai.AuthenticationError) as refused:
        client_for(gateway, key="ember-wrong-key-wrong-key").models.list()
    assert "API key" in str(refused.value)
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    conn.request("POST", "/v1/chat/completions", body=b"{}")
    assert conn.getresponse().status == 401
    assert [r.status for r in recorded(records, 2)] == [401, 401]
    assert gateway.settings.api_key not in repr(records) + repr(gateway.settings)  # the key is never recorded


def test_unknown_model_no_model_loaded_and_bad_bodies_say_what_to_do(served):
    gateway, registry, _records = served
    client = client_for(gateway)
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}])
    assert "SmolLM2" in str(unknown.value)
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    conn.request("POST", "/v1/chat/completions", body=b"not json",
                 headers={"Authorization": f"Bearer {gateway.settings.api_key}"})
    assert conn.getresponse().status == 400
    registry.take("embedding")  # the user unloaded it
    with pytest.raises(openai.APIStatusError) as missing:
        client.embeddings.create(model="all-MiniLM-L6-v2.f16", input="x")
    assert missing.value.status_code == 503
    assert "No embedding model is loaded" in str(missing.value) and "Load an embedding model" in str(missing.value)


def non_loopback_address() -> str | None:
    """An address of this machine that is not loopback (None where it has none)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the outgoing interface
            address = probe.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_other_computers_are_refused_unless_the_network_is_chosen(shared_host, smollm2_path):
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    registry = HostRegistry()
    registry.put(LoadedModel("chat", shared_host, str(smollm2_path)))
    key = new_api_key()
    local_only = Gateway(registry, GatewaySettings(port=0, api_key=key))
    local_only.start()
    try:
        with pytest.raises(OSError):  # it does not even listen there
            socket.create_connection((address, local_only.port), timeout=5).close()
    finally:
        local_only.stop()
    network = Gateway(registry, GatewaySettings(port=0, api_key=key, address="0.0.0.0"))
    network.start()
    try:
        names = [m.id for m in openai.OpenAI(base_url=f"http://{address}:{network.port}/v1", api_key=key,
                                             max_retries=0).models.list().data]
        assert names == [smollm2_path.stem]
    finally:
        network.stop()


def test_the_queue_takes_turns_between_clients():
    """Client a sends three requests, then b one: b is served second, not after all of a's."""
    queue, served, gate = FairQueue(), [], threading.Event()

    def request(client: str, number: int) -> None:
        with queue.turn(client, timeout=10):
            served.append(f"{client}{number}")
            gate.wait(5)

    threads = [threading.Thread(target=request, args=("a", 1))]
    threads[0].start()
    while not queue.snapshot()[0]:
        time.sleep(0.01)
    for client, number in (("a", 2), ("a", 3), ("b", 1)):
        threads.append(threading.Thread(target=request, args=(client, number)))
        threads[-1].start()
        while len(queue.snapshot()[1]) < len(threads) - 1:
            time.sleep(0.01)
    assert queue.snapshot() == (True, ["b", "a", "a"])
    gate.set()
    for thread in threads:
        thread.join(10)
    assert served == ["a1", "b1", "a2", "a3"]


def test_switching_off_ends_connections_a_client_keeps_open(served):
    import http.client
    import threading

    gateway, _registry, _records = served
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    connection.request("GET", "/v1/models", headers={"Authorization": f"Bearer {gateway.settings.api_key}"})
    assert connection.getresponse().read()  # answered; the connection stays open (keep-alive)
    handlers = lambda: [t for t in threading.enumerate() if "process_request" in t.name]  # noqa: E731
    assert handlers()  # a thread waits on that connection for the next request
    gateway.stop()
    deadline = time.monotonic() + 10
    while handlers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not handlers()
    with pytest.raises((OSError, http.client.HTTPException)):  # switched off: nothing answers any more
        connection.request("GET", "/v1/models", headers={"Authorization": f"Bearer {gateway.settings.api_key}"})
        connection.getresponse().read()
