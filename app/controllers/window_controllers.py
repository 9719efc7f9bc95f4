"""The controllers one window shares between its pages, built once by the window and handed to each page.

A page receives what it needs from here (its builder may make a controller of its own from these);
it never reaches into the window.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.changes import ChangeNotice
from app.controllers.chat_controller import ChatController
from app.controllers.downloads_controller import DownloadsController
from app.controllers.library_controller import LibraryController
from app.controllers.reply_controller import ReplyController
from app.controllers.runtime_controller import RuntimeController
from app.controllers.server_controller import ServerController
from app.controllers.source_controller import SourceController
from app.controllers.status_controller import StatusController
from app.services import Services
from app.workers import WorkerRunner


@dataclass(frozen=True)
class WindowControllers:
    services: Services
    runner: WorkerRunner
    notices: ChangeNotice
    library: LibraryController
    downloads: DownloadsController  # every page's downloads, one queue
    runtime: RuntimeController
    chat: ChatController
    replies: ReplyController
    status: StatusController
    sources: SourceController  # draws cited pages and reads cited files for the source viewer
    server: ServerController  # the local API server (the Server page switches it, the Settings page sets it)


def build_controllers(services: Services, runner: WorkerRunner, parent) -> WindowControllers:
    """Every shared controller, in dependency order (the library before the runtime before the replies)."""
    notices = ChangeNotice(parent)
    library = LibraryController(services, runner, notices, parent)
    downloads = DownloadsController(services, runner, library, parent)
    runtime = RuntimeController(services, runner, library, parent)
    chat = ChatController(services, notices, parent)
    replies = ReplyController(services, runner, chat, runtime, parent)
    status = StatusController(services, parent)
    sources = SourceController(runner, log_dir=services.paths.logs, parent=parent)
    server = ServerController(services, runner, parent)
    return WindowControllers(services, runner, notices, library, downloads, runtime, chat, replies, status, sources,
                             server)
