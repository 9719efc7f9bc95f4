"""Export a chat to Markdown (the shown branch, for reading) or JSON (everything, for import).

The JSON carries every branch with provenance and stats:
    {"format": "ember-chat", "version": 1, "exported_at": ..., "session": {...}, "messages": [...]}
each message with its `id` and `parent_id` (the tree), role, content, status, provenance and stats.
Provenance carries `model_path` since schema v2; files without it (older exports) import as before,
and an older Ember ignores it. Import checks the whole file first and says what is wrong; it gives
the messages new ids, so importing twice makes two chats. It runs as one transaction, so a failure
(or a crash) half-way leaves no chat behind.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from engine.errors import InvalidInput
from engine.jobs import GenerationStats
from engine.store.chats import ChatRepository, Provenance
from engine.store.db import Transaction

FORMAT, VERSION = "ember-chat", 1
ROLES = ("system", "user", "assistant")
IMPORTED_STATUSES = ("complete", "cancelled", "interrupted", "error")
PICK_ANOTHER = "Pick a file that Ember exported as JSON (Export… → Ember chat)."


def to_markdown(repo: ChatRepository, session_id: int) -> str:
    session = repo.get_session(session_id)
    lines = [f"# {session.title}", ""]
    if session.system_prompt.strip():
        lines += ["**System:**", "", session.system_prompt, ""]
    for message in repo.branch(session_id):
        who = {"user": "You", "assistant": "Assistant"}.get(message.role, "System")
        note = "" if message.status == "complete" else f" _({message.status})_"
        lines += [f"**{who}:**{note}", "", message.content, ""]
        p, s = message.provenance, message.stats
        if message.role == "assistant" and p.model_name:
            detail = [p.model_name] + ([p.quantization] if p.quantization else [])
            if p.adapter_path:
                detail.append(f"adapter {Path(p.adapter_path).stem} ×{p.adapter_scale or 1.0:g}")
            if s is not None:
                detail.append(f"{s.completion_tokens} tokens")
            lines += [f"<sub>{' · '.join(detail)}</sub>", ""]
    return "\n".join(lines)


def to_json(repo: ChatRepository, session_id: int) -> dict:
    session = repo.get_session(session_id)
    return {
        "format": FORMAT, "version": VERSION, "exported_at": time.time(),
        "session": {"title": session.title, "created_at": session.created_at, "system_prompt": session.system_prompt,
                    "sampling": session.sampling, "context_length": session.context_length,
                    "model_path": session.model_path, "current_leaf_id": session.current_leaf_id,
                    "adapter_path": session.adapter_path, "adapter_scale": session.adapter_scale},
        "messages": [
            {"id": m.id, "parent_id": m.parent_id, "role": m.role, "content": m.content,
             "status": "interrupted" if m.status == "streaming" else m.status, "created_at": m.created_at,
             "provenance": asdict(m.provenance), "stats": m.stats.to_dict() if m.stats else None, "error": m.error}
            for m in repo.messages(session_id)
        ],
    }


def write_export(repo: ChatRepository, session_id: int, path: Path) -> Path:
    """Write `.json` as the full export and anything else as Markdown (via a temporary file + rename)."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        text = json.dumps(to_json(repo, session_id), ensure_ascii=False, indent=2)
    else:
        text = to_markdown(repo, session_id)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def _load(data: dict | str | Path) -> dict:
    if isinstance(data, Path):
        try:
            data = data.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"Could not read {data.name}: {exc}.", PICK_ANOTHER) from exc
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise InvalidInput(f"This is not a JSON file ({exc}).", PICK_ANOTHER) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidInput("This JSON file is not an Ember chat export.", PICK_ANOTHER)
    if data.get("version") != VERSION:
        raise InvalidInput(f"This export has version {data.get('version')!r}; this Ember reads version {VERSION}.",
                           "Update Ember to import it.")
    return data


def validate(data: dict) -> tuple[dict, list[dict]]:
    """Check an export before anything is written. Returns (session, messages)."""
    session, messages = data.get("session"), data.get("messages")
    if not isinstance(session, dict):
        raise InvalidInput("The export has no chat settings (\"session\").", PICK_ANOTHER)
    if not isinstance(messages, list):
        raise InvalidInput("The export has no message list (\"messages\").", PICK_ANOTHER)
    if not isinstance(session.get("sampling") or {}, dict):
        raise InvalidInput("The export's sampling settings are damaged.", PICK_ANOTHER)
    context = session.get("context_length")
    if context is not None and (not isinstance(context, int) or context <= 0):
        raise InvalidInput("The export's context length is not a positive number.", PICK_ANOTHER)
    known: set = set()
    for number, m in enumerate(messages, start=1):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise InvalidInput(f"Message {number} of the export is damaged (its role or text is missing).",
                               PICK_ANOTHER)
        if m.get("id") is None or m["id"] in known:
            raise InvalidInput(f"Message {number} of the export has no id, or the id of another message.",
                               PICK_ANOTHER)
        if m.get("parent_id") is not None and m["parent_id"] not in known:
            raise InvalidInput(f"Message {number} of the export answers a message that is not before it.",
                               PICK_ANOTHER)
        for key in ("provenance", "stats"):
            if m.get(key) is not None and not isinstance(m[key], dict):
                raise InvalidInput(f"The {key} of message {number} of the export is damaged.", PICK_ANOTHER)
        known.add(m["id"])
    return session, messages


def import_json(repo: ChatRepository, data: dict | str | Path) -> int:
    """Create a new chat from an export; returns its id. Bad input raises InvalidInput saying what is wrong."""
    session, messages = validate(_load(data))
    with Transaction(repo.conn, "import the chat"):
        created = repo.create_session(str(session.get("title") or "Imported chat")[:200],
                                      str(session.get("system_prompt") or ""), session.get("sampling") or {},
                                      session.get("context_length"), session.get("model_path"))
        if session.get("adapter_path"):
            repo.update_session(created.id, adapter_path=session["adapter_path"],
                                adapter_scale=session.get("adapter_scale", 1.0))
        new_ids: dict = {}
        for m in messages:
            new_ids[m["id"]] = _add(repo, created.id, new_ids.get(m.get("parent_id")), m)
        leaf = new_ids.get(session.get("current_leaf_id"))
        repo.set_current_leaf(created.id, leaf if leaf is not None else (list(new_ids.values()) or [None])[-1])
    return created.id


def _add(repo: ChatRepository, session_id: int, parent_id: int | None, m: dict) -> int:
    status = m.get("status") if m.get("status") in IMPORTED_STATUSES else "complete"
    prov = m.get("provenance") or {}
    try:
        stats = GenerationStats.from_dict(m["stats"]) if m.get("stats") else None
        provenance = Provenance(**{k: prov.get(k) for k in Provenance.__dataclass_fields__})
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"A message of the export has damaged details ({exc}).", PICK_ANOTHER) from exc
    created_at = m.get("created_at") if isinstance(m.get("created_at"), (int, float)) else None
    saved = repo.add_message(session_id, parent_id, m["role"], m["content"], status=status, provenance=provenance,
                             stats=stats, created_at=created_at)
    if isinstance(m.get("error"), str):
        repo.update_message(saved.id, error=m["error"])
    return saved.id
