"""Chat turns on the real host: saved replies with provenance, branches, cancel, the context budget."""

from __future__ import annotations

import pytest

from engine.chat.budget import ContextOverflow
from engine.chat.conversation import Conversation, ModelIdentity
from engine.chat.turn import TurnRequest, assemble_turn, build_messages
from engine.errors import Cancelled, InvalidInput
from engine.jobs import CancelToken
from engine.paths import EmberPaths
from engine.store.chats import ChatRepository
from engine.store.db import connect

pytestmark = pytest.mark.timeout(120)

MODEL = ModelIdentity(name="SmolLM2-135M-Instruct.Q4_1.gguf", sha256="ab" * 32, quantization="Q4_1",
                      template_hash="872be49dbb638044")


@pytest.fixture
def repo(ember_home):
    conn = connect(EmberPaths(ember_home).db)
    yield ChatRepository(conn)
    conn.close()


@pytest.fixture
def conversation(ember_home, repo):
    return Conversation(EmberPaths(ember_home).db)


def run(events):
    text, stats = [], None
    for event in events:
        if event.stats:
            stats = event.stats
        else:
            text.append(event.text)
    return "".join(text), stats


CONTEXT = 2048


def send(conversation, host_client, session_id: int, text: str, cancel=None):
    """One turn as the app runs it: request, assemble (count), write, stream."""
    turn = assemble_turn(host_client, conversation.request_send(session_id, text, CONTEXT))
    pending = conversation.prepare_send(session_id, text, MODEL)
    return pending, turn, conversation.stream_reply(pending, host_client, turn.messages, cancel)


def small_session(repo, **settings):
    session = repo.create_session(sampling={"max_tokens": 12, "seed": 5, "temperature": 0.0}, **settings)
    return session


def test_send_saves_both_messages_with_provenance_and_stats(conversation, repo, host_client):
    session = small_session(repo, system_prompt="Answer in one sentence.")
    pending, turn, events = send(conversation, host_client, session.id, "What is the capital of France?")
    assert repo.get_message(pending.assistant_message_id).status == "streaming"
    assert turn.messages == [{"role": "system", "content": "Answer in one sentence."},
                             {"role": "user", "content": "What is the capital of France?"}]
    assert turn.budget.system_tokens > 0 and turn.budget.history_tokens > 0
    text, stats = run(events)
    assert stats.prompt_tokens == turn.budget.system_tokens + turn.budget.history_tokens
    user, reply = repo.branch(session.id)
    assert user.content == "What is the capital of France?"
    assert reply.content == text and text
    assert reply.status == "complete"
    assert reply.stats.completion_tokens == stats.completion_tokens > 0
    assert reply.provenance.model_sha256 == MODEL.sha256
    assert reply.provenance.quantization == "Q4_1"
    assert reply.provenance.sampling["max_tokens"] == 12
    assert reply.provenance.seed == 5
    assert repo.get_session(session.id).title.startswith("What is the capital")


def test_regenerate_and_edit_keep_every_branch(conversation, repo, host_client):
    session = small_session(repo)
    first, _, events = send(conversation, host_client, session.id, "Name a fruit.")
    run(events)
    request = conversation.request_regenerate(session.id, first.assistant_message_id, CONTEXT)
    assert [m.content for m in request.history] == ["Name a fruit."] and request.draft is None
    again = conversation.prepare_regenerate(session.id, first.assistant_message_id, MODEL)
    run(conversation.stream_reply(again, host_client, assemble_turn(host_client, request).messages))
    user = repo.branch(session.id)[0]
    replies = repo.children(session.id, user.id)
    assert [m.id for m in replies] == [first.assistant_message_id, again.assistant_message_id]

    request = conversation.request_edit(session.id, user.id, "Name a vegetable.", CONTEXT)
    assert request.history == [] and request.draft == "Name a vegetable."
    edited = conversation.prepare_edit(session.id, user.id, "Name a vegetable.", MODEL)
    run(conversation.stream_reply(edited, host_client, assemble_turn(host_client, request).messages))
    roots = repo.children(session.id, None)
    assert [m.content for m in roots] == ["Name a fruit.", "Name a vegetable."]
    assert repo.branch(session.id)[0].content == "Name a vegetable."
    with pytest.raises(InvalidInput):
        conversation.prepare_edit(session.id, edited.assistant_message_id, "x", MODEL)
    with pytest.raises(InvalidInput):
        conversation.prepare_send(session.id, "   ", MODEL)


def test_cancel_keeps_the_partial_reply_marked_cancelled(conversation, repo, host_client):
    session = repo.create_session(sampling={"max_tokens": 400, "seed": 1})
    cancel = CancelToken()
    pending, _, events = send(conversation, host_client, session.id, "Write a long story about a cat.", cancel)
    seen = []
    for event in events:
        if event.stats:
            stats = event.stats
            break
        seen.append(event.text)
        if len(seen) == 3:
            cancel.cancel()
    reply = repo.get_message(pending.assistant_message_id)
    assert stats.stop_reason == "cancelled"
    assert reply.status == "cancelled"
    assert reply.content == "".join(seen) and reply.content


def test_history_over_the_context_is_never_cut_without_the_choice(conversation, repo, host_client):
    session = repo.create_session(system_prompt="You are terse.", sampling={"max_tokens": 8, "temperature": 0.0})
    parent = None
    for i in range(12):
        parent = repo.add_message(session.id, parent.id if parent else None, "user", f"Question {i}: " + "blah " * 40)
        parent = repo.add_message(session.id, parent.id, "assistant", "ok " * 20)
    request = conversation.request_send(session.id, "Last question?", 512)
    turn = assemble_turn(host_client, request)
    assert turn.budget.overflows and turn.budget.system_tokens > 0 and turn.budget.dropped_messages == 0
    assert len(turn.messages) == 1 + 24 + 1  # nothing cut without the user's choice
    # the user chose: drop the oldest turns; the system prompt and the new prompt stay
    trimmed = assemble_turn(host_client, request, drop_oldest=True)
    assert not trimmed.budget.overflows and trimmed.budget.dropped_messages > 0
    assert trimmed.messages[0]["role"] == "system" and trimmed.messages[1]["role"] == "user"
    assert trimmed.messages[-1] == {"role": "user", "content": "Last question?"}
    pending = conversation.prepare_send(session.id, "Last question?", MODEL)
    text, stats = run(conversation.stream_reply(pending, host_client, trimmed.messages))
    assert stats.stop_reason in ("stop", "length")
    assert stats.prompt_tokens + 8 <= 512
    assert len(repo.branch(session.id)) == 12 * 2 + 2  # the stored chat is untouched


def test_a_prompt_that_alone_overflows_is_refused_even_when_dropping(conversation, repo, host_client):
    session = repo.create_session(sampling={"max_tokens": 8})
    request = conversation.request_send(session.id, "word " * 600, 512)
    with pytest.raises(ContextOverflow) as info:
        assemble_turn(host_client, request, drop_oldest=True)
    assert "context" in info.value.message


def test_documents_are_their_own_budget_segment_and_sit_in_the_last_prompt(host_client):
    request = TurnRequest("Be brief.", [], "When was the bridge built?", 16, 2048,
                          documents=("The Old Bridge was built in 1566.", "It is 29 metres long."))
    turn = assemble_turn(host_client, request)
    plain = assemble_turn(host_client, TurnRequest("Be brief.", [], "When was the bridge built?", 16, 2048))
    assert turn.budget.documents_tokens > 0
    assert turn.budget.history_tokens == plain.budget.history_tokens
    assert turn.budget.needed == plain.budget.needed + turn.budget.documents_tokens
    last = turn.messages[-1]["content"]
    assert "[1] The Old Bridge was built in 1566." in last and last.endswith("Question: When was the bridge built?")
    assert build_messages("", [], "hi") == [{"role": "user", "content": "hi"}]


def test_counting_stops_when_the_turn_is_cancelled(host_client):
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled):
        assemble_turn(host_client, TurnRequest("", [], "hello", 16, 2048), cancel=cancel)
    assert host_client.count_tokens([{"role": "user", "content": "hello"}]) > 0  # the host is fine


def test_a_chats_adapter_is_in_its_request_and_in_its_replies_provenance(conversation, repo, tmp_path):
    """The turn carries the chat's adapter (the app puts it on the host), and the reply records it."""
    session = small_session(repo)
    adapter = str(tmp_path / "fact" / "adapter.gguf")
    repo.update_session(session.id, adapter_path=adapter, adapter_scale=0.75)
    request = conversation.request_send(session.id, "Hi", CONTEXT)
    assert (request.adapter_path, request.adapter_scale) == (adapter, 0.75)
    pending = conversation.prepare_send(session.id, "Hi", MODEL)
    reply = repo.get_message(pending.assistant_message_id)
    assert (reply.provenance.adapter_path, reply.provenance.adapter_scale) == (adapter, 0.75)
    repo.update_session(session.id, adapter_path=None)
    assert conversation.request_send(session.id, "Hi", CONTEXT).adapter_path is None
    pending = conversation.prepare_send(session.id, "Again", MODEL)
    assert repo.get_message(pending.assistant_message_id).provenance.adapter_path is None


@pytest.mark.parametrize("scale", [-0.5, 4.5, "strong", None])
def test_an_adapter_strength_out_of_range_is_refused_and_the_old_one_kept(repo, scale):
    session = repo.create_session()
    repo.update_session(session.id, adapter_path="/a/adapter.gguf", adapter_scale=1.5)
    with pytest.raises(InvalidInput) as refused:
        repo.update_session(session.id, adapter_scale=scale)
    assert "0 to 4" in refused.value.hint
    assert repo.get_session(session.id).adapter_scale == 1.5
