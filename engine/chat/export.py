"""Export a chat to Markdown (the shown branch, for reading) or JSON (everything, for import).

The JSON carries every branch with provenance and stats: {"format": "ember-chat", "version": 1, ...}.
Import checks it and gives the messages new ids, so importing twice makes two chats.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.errors import InvalidInput
from engine.jobs import GenerationStats
from engine.store.chats import ChatRepository, Provenance

FORMAT, VERSION = "ember-chat", 1


def to_markdown(repo: ChatRepository, session_id: int) -> str:
    session = repo.get_session(session_id)
    lines = [f"# {session.title}", ""]
    if session.system_prompt.strip():
        lines += ["**System:**", "", session.system_prompt, ""]
    for message in repo.branch(session_id):
        who = "You" if message.role == "user" else "Assistant"
        note = "" if message.status == "complete" else f" _({message.status})_"
        lines += [f"**{who}:**{note}", "", message.content, ""]
        if message.role == "assistant" and message.provenance.model_name:
            lines += [f"<sub>{message.provenance.model_name}</sub>", ""]
    return "\n".join(lines)


def to_json(repo: ChatRepository, session_id: int) -> dict:
    session = repo.get_session(session_id)
    return {
        "format": FORMAT, "version": VERSION,
        "session": {"title": session.title, "created_at": session.created_at, "system_prompt": session.system_prompt,
                    "sampling": session.sampling, "context_length": session.context_length,
                    "current_leaf_id": session.current_leaf_id},
        "messages": [
            {"id": m.id, "parent_id": m.parent_id, "role": m.role, "content": m.content, "status": m.status,
             "created_at": m.created_at, "provenance": vars(m.provenance),
             "stats": m.stats.to_dict() if m.stats else None}
            for m in repo.messages(session_id)
        ],
    }


def write_export(repo: ChatRepository, session_id: int, path: Path) -> Path:
    path = Path(path)
    if path.suffix.lower() == ".json":
        text = json.dumps(to_json(repo, session_id), ensure_ascii=False, indent=2)
    else:
        text = to_markdown(repo, session_id)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def import_json(repo: ChatRepository, data: dict | str | Path) -> int:
    """Create a new chat from an export; returns its id. Bad input raises InvalidInput saying what is wrong."""
    if isinstance(data, Path):
        try:
            data = data.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"Could not read {data}: {exc}") from exc
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise InvalidInput(f"This is not a JSON file: {exc}.", "Pick a file exported from Ember as JSON.") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidInput("This JSON file is not an Ember chat export.", "Pick a file exported from Ember as JSON.")
    if data.get("version") != VERSION:
        raise InvalidInput(f"This export has version {data.get('version')}; this Ember reads version {VERSION}.")
    session, messages = data.get("session") or {}, data.get("messages")
    if not isinstance(messages, list):
        raise InvalidInput("The export has no message list.")
    known: set = set()
    for index, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") \
                or not isinstance(m.get("content"), str) or m.get("id") is None:
            raise InvalidInput(f"Message {index + 1} of the export is damaged (role, content or id missing).")
        if m.get("parent_id") is not None and m["parent_id"] not in known:
            raise InvalidInput(f"Message {index + 1} of the export answers a message that is not before it.")
        known.add(m["id"])
    new_ids: dict = {}
    created = repo.create_session(str(session.get("title") or "Imported chat")[:200],
                                  str(session.get("system_prompt") or ""), session.get("sampling") or {},
                                  session.get("context_length"))
    try:
        _add_messages(repo, created.id, messages, new_ids)
    except Exception:
        repo.erase_session(created.id)  # never leave half a chat behind
        raise
    leaf = new_ids.get(session.get("current_leaf_id"))
    if leaf is not None:
        repo.set_current_leaf(created.id, leaf)
    return created.id


def _add_messages(repo: ChatRepository, session_id: int, messages: list, new_ids: dict) -> None:
    for m in messages:
        status = m.get("status") if m.get("status") in ("complete", "cancelled", "interrupted", "error") else "complete"
        prov = m.get("provenance") or {}
        saved = repo.add_message(
            session_id, new_ids.get(m.get("parent_id")), m["role"], m["content"], status=status,
            provenance=Provenance(**{k: prov.get(k) for k in Provenance.__dataclass_fields__}),
            stats=GenerationStats.from_dict(m["stats"]) if isinstance(m.get("stats"), dict) else None,
            created_at=m.get("created_at"),
        )
        new_ids[m["id"]] = saved.id
