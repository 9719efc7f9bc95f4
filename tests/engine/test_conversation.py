"""Chat turns on the real host: saved replies with provenance, branches, cancel, the context budget."""

from __future__ import annotations

import pytest

from engine.chat.budget import ContextOverflow, measure_budget
from engine.chat.conversation import Conversation, ModelIdentity
from engine.errors import InvalidInput
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


def small_session(repo, **settings):
    session = repo.create_session(sampling={"max_tokens": 12, "seed": 5, "temperature": 0.0}, **settings)
    return session


def test_send_saves_both_messages_with_provenance_and_stats(conversation, repo, host_client):
    session = small_session(repo, system_prompt="Answer in one sentence.")
    pending = conversation.prepare_send(session.id, "What is the capital of France?", MODEL)
    assert repo.get_message(pending.assistant_message_id).status == "streaming"
    assert pending.history[0] == {"role": "system", "content": "Answer in one sentence."}
    text, stats = run(conversation.stream_reply(pending, host_client))
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
    first = conversation.prepare_send(session.id, "Name a fruit.", MODEL)
    run(conversation.stream_reply(first, host_client))
    again = conversation.prepare_regenerate(session.id, first.assistant_message_id, MODEL)
    run(conversation.stream_reply(again, host_client))
    user = repo.branch(session.id)[0]
    replies = repo.children(session.id, user.id)
    assert [m.id for m in replies] == [first.assistant_message_id, again.assistant_message_id]

    edited = conversation.prepare_edit(session.id, user.id, "Name a vegetable.", MODEL)
    run(conversation.stream_reply(edited, host_client))
    roots = repo.children(session.id, None)
    assert [m.content for m in roots] == ["Name a fruit.", "Name a vegetable."]
    assert repo.branch(session.id)[0].content == "Name a vegetable."
    with pytest.raises(InvalidInput):
        conversation.prepare_edit(session.id, edited.assistant_message_id, "x", MODEL)
    with pytest.raises(InvalidInput):
        conversation.prepare_send(session.id, "   ", MODEL)


def test_cancel_keeps_the_partial_reply_marked_cancelled(conversation, repo, host_client):
    session = repo.create_session(sampling={"max_tokens": 400, "seed": 1})
    pending = conversation.prepare_send(session.id, "Write a long story about a cat.", MODEL)
    cancel = CancelToken()
    seen = []
    for event in conversation.stream_reply(pending, host_client, cancel):
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
    pending = conversation.prepare_send(session.id, "Last question?", MODEL)
    budget = measure_budget(host_client, pending.history, 8, 512)
    assert budget.overflows and budget.system_tokens > 0
    with pytest.raises(ContextOverflow) as info:
        run(conversation.stream_reply(pending, host_client, context_length=512))
    assert "context" in info.value.message
    # the user chose: drop the oldest turns; the system prompt stays, the stored chat is untouched
    pending = conversation.prepare_regenerate(session.id, repo.branch(session.id)[-1].id, MODEL)
    text, stats = run(conversation.stream_reply(pending, host_client, context_length=512, drop_oldest=True))
    assert stats.stop_reason in ("stop", "length")
    assert stats.prompt_tokens + 8 <= 512
    assert len(repo.branch(session.id)) == 12 * 2 + 2
