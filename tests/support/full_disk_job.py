"""Ember's saving and indexing on a disk that fills up, run by tests/hostile/test_storage_hostile.py
inside a small tmpfs (tests/support/hostile_storage.on_small_disk). Prints one JSON line.

    python -m tests.support.full_disk_job message            # EMBER_HOME on the small disk
    python -m tests.support.full_disk_job exit               # the settings and the backup at a clean exit
    python -m tests.support.full_disk_job index MODEL DOCS   # the embedding model, a folder of files

Both fill the disk with a filler file (up to ENOSPC; under RLIMIT_FSIZE the filler stops at the
limit and the database file meets it instead), then save until Ember says the disk is full; then
the filler goes, and the same work must succeed with everything saved before intact.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from engine.errors import DatabaseError, EmberError
from engine.jobs import run_to_end
from engine.paths import EmberPaths
from engine.store.chats import ChatRepository
from engine.store.db import connect

BLOCK = 64 * 1024


def fill(path: Path, leave: int) -> None:
    """Write `path` until the disk (or the file-size limit) says no, then give `leave` bytes back."""
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\xa5" * BLOCK)
                f.flush()
        except OSError:
            pass
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(max(0, size - leave))


def integrity(db: Path) -> str:
    conn = connect(db, migrate=False)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def message_job(paths: EmberPaths) -> dict:
    conn = connect(paths.db)
    repo = ChatRepository(conn)
    session = repo.create_session("Before the disk filled up")
    saved = []
    for n in range(5):
        saved.append(repo.add_message(session.id, saved[-1] if saved else None, "user", f"kept {n}").id)
    filler = paths.home / "filler"
    fill(filler, leave=16 * 1024)
    error = None
    for n in range(400):
        try:
            saved.append(repo.add_message(session.id, saved[-1], "user", f"note {n} " + "x" * 8000).id)
        except DatabaseError as exc:
            error = exc
            break
    in_transaction = conn.in_transaction
    conn.close()
    filler.unlink()
    conn = connect(paths.db, migrate=False)
    repo = ChatRepository(conn)
    kept = [m.id for m in repo.messages(session.id)] == saved
    after = repo.add_message(session.id, saved[-1], "user", "room again").id
    conn.close()
    return {"error": error.message if error else None, "hint": error.hint if error else None,
            "in_transaction": in_transaction, "kept": kept, "saved": len(saved),
            "saved_after": after is not None, "integrity": integrity(paths.db)}


def index_job(paths: EmberPaths, model: str, docs: str) -> dict:
    from engine.rag.embedder import Embedder
    from engine.rag.index_job import index_sources
    from engine.rag.parser import DocumentParser
    from engine.runtime.registry import HostRegistry
    from engine.store.documents_repo import DocumentsRepository

    conn = connect(paths.db)
    repo = DocumentsRepository(conn)
    collection = repo.create_collection("Notes", embedding_model_path=model)
    repo.add_source(collection.id, docs, "folder")
    hosts = HostRegistry()
    embedder = Embedder(hosts, paths.logs, threads=1)
    parser = DocumentParser(log_dir=paths.logs)
    filler = paths.home / "filler"
    try:
        run_to_end(embedder.ensure(model))  # the model's process runs before the disk fills
        fill(filler, leave=192 * 1024)
        first = None
        try:
            run_to_end(index_sources(paths.db, collection.id, embedder, parser))
        except EmberError as exc:
            first = exc
        after_full = {d.path: d.status for d in repo.list_documents(collection.id)}
        done_when_full = [d.id for d in repo.list_documents(collection.id) if d.status == "indexed"]
        half_taken = [d for d in done_when_full if not repo.chunks_of(d)]  # "indexed" must mean chunks stored
        integrity_full = integrity(paths.db)
        filler.unlink()
        report = run_to_end(index_sources(paths.db, collection.id, embedder, parser))
        statuses = sorted({d.status for d in repo.list_documents(collection.id)})
        empty = [d.path for d in repo.list_documents(collection.id) if not repo.chunks_of(d.id)]
    finally:
        parser.close()
        hosts.stop_all()
        conn.close()
    return {"error": first.message if first else None, "hint": first.hint if first else None,
            "indexed_when_full": len(done_when_full), "statuses_when_full": sorted(set(after_full.values())),
            "half_taken": len(half_taken), "integrity_full": integrity_full,
            "second_run_indexed": report.indexed, "second_run_unchanged": report.unchanged,
            "failed": report.failed, "statuses": statuses, "empty": empty, "integrity": integrity(paths.db)}


def exit_job(paths: EmberPaths) -> dict:
    """What a clean exit writes on a full disk: the settings (a choice saved) and the database's backup."""
    from engine.errors import SettingsNotSaved
    from engine.preferences import load_preferences, save_preferences
    from engine.store.recovery import backup_database, backups_folder

    conn = connect(paths.db)
    ChatRepository(conn).create_session("Backed up")
    conn.close()
    save_preferences(paths, theme="dark")
    first_backup = backup_database(paths)
    settings_before = paths.settings.read_bytes()
    filler = paths.home / "filler"
    fill(filler, leave=0)
    settings_error = backup_error = None
    try:
        save_preferences(paths, theme="light", system_prompt="x" * 200_000)
    except SettingsNotSaved as exc:
        settings_error = exc
    try:
        backup_database(paths)
    except Exception as exc:  # noqa: BLE001 - which error the disk gives is what is reported
        backup_error = f"{type(exc).__name__}: {exc}"
    left = sorted(p.name for p in paths.home.iterdir() if p.name.startswith("settings.json"))
    backups = sorted(p.name for p in backups_folder(paths).iterdir())
    filler.unlink()
    second_backup = backup_database(paths)
    return {"settings_error": settings_error.message if settings_error else None,
            "settings_hint": settings_error.hint if settings_error else None,
            "settings_intact": paths.settings.read_bytes() == settings_before,
            "theme": load_preferences(paths).theme, "settings_files": left,
            "backup_error": backup_error, "backups_when_full": backups, "first_backup": first_backup.name,
            "second_backup_ok": second_backup is not None and integrity(second_backup) == "ok"}



def main(argv: list[str]) -> int:
    paths = EmberPaths.from_env().ensure()
    if argv[0] == "message":
        result = message_job(paths)
    elif argv[0] == "exit":
        result = exit_job(paths)
    else:
        result = index_job(paths, argv[1], argv[2])
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
