"""Typed errors: each says what happened (`message`) and what the user can do (`hint`).

The app shows `message` and `hint`; it never shows a traceback. The CLI prints them as one line,
or as `{"error": ..., "hint": ...}` with `--json`.
"""

from __future__ import annotations


class EmberError(Exception):
    """Base of every error the user may see."""

    default_hint = "See the log for details."

    def __init__(self, message: str, hint: str | None = None, *, log_path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint
        self.log_path = log_path

    def to_dict(self) -> dict:
        return {"error": self.message, "hint": self.hint}

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class Cancelled(EmberError):
    """The user stopped the work. Not a failure: callers that asked for the cancel drop it quietly."""

    default_hint = ""


class InvalidInput(EmberError):
    default_hint = "Check the value and try again."


class BadModelFile(EmberError):
    default_hint = "The file is not a usable GGUF model. Download it again or pick another file."


class UnsupportedModel(EmberError):
    default_hint = "This llama.cpp build does not know this model's architecture. Pick another model or update Ember."


class OutOfMemory(EmberError):
    default_hint = "Use a smaller quantization, a shorter context length or fewer GPU layers."


class HostStartFailed(EmberError):
    default_hint = "See the host log in Ember's logs folder."


class HostDied(EmberError):
    default_hint = "The model process stopped. Load the model again; if it keeps happening, see the host log."


class TemplateError(EmberError):
    default_hint = "Ember falls back to a built-in chat format for this model."


class GenerationFailed(EmberError):
    default_hint = "Try again; if it keeps happening, see the log."


class HubError(EmberError):
    default_hint = "Check the repository name and your network connection, then try again."


class NetworkError(HubError):
    default_hint = "Check your network connection; the download resumes where it stopped."


class DownloadFailed(HubError):
    default_hint = "Try again: the download resumes where it stopped."


class ChecksumMismatch(DownloadFailed):
    default_hint = "The file was removed. Download it again; if it fails again, the repository's file may be broken."


class NotEnoughDisk(EmberError):
    default_hint = "Free some disk space or choose a smaller file."


class UnsafePath(EmberError):
    default_hint = "The repository lists a file path that would write outside Ember's models folder; it was refused."


class HomeLocked(EmberError):
    default_hint = "Close the other Ember window (or wait for its command to finish) and try again."


class HomeNotWritable(EmberError):
    default_hint = ("Check that you may write to this folder (its owner and permissions, or a disk mounted "
                    "read-only), or set EMBER_HOME to a folder you may write to.")


class SettingsNotSaved(EmberError):
    default_hint = ("Free some disk space, or check that you may write to Ember's data folder, then try again. "
                    "The settings saved before are kept.")


class DatabaseTooNew(EmberError):
    default_hint = "This database was written by a newer Ember. Update Ember, or set EMBER_HOME to another folder."


class DatabaseError(EmberError):
    default_hint = "A copy of the database was kept next to it before any change; see the log."


class NotFound(EmberError):
    default_hint = "It may have been deleted."
