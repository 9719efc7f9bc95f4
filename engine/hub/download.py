"""Resumable, verified downloads of Hub files into EMBER_HOME/models.

huggingface_hub gives the URL (`hf_hub_url`), the metadata (`get_hf_file_metadata`: etag, size,
commit, CDN location) and the auth headers (`build_hf_headers`). Ember adds what it lacks: Range
requests into `<dest>.part` that resume across processes (the sidecar `<dest>.part.json` says
what the part is), stall detection (no byte for `stall_timeout_s`) with retries and backoff, and
the SHA-256 the Hub publishes checked before the file gets its final name. A file that fails the
check is deleted; a half file never carries a model's name.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ChecksumMismatch, DownloadFailed, EmberError, NetworkError, NotEnoughDisk
from engine.hub.client import hub_errors, unreachable
from engine.hub.files import list_repo_files
from engine.hub.sidecar import PartRecord, part_path, sidecar_path
from engine.jobs import CancelToken, Progress
from engine.paths import EmberPaths
from engine.progress_text import RateMeter, human_duration, human_size
from engine.sockets import shut_down

HASH_CHUNK = 4 * 2**20
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class DownloadOptions:
    stall_timeout_s: float = 30.0  # no byte for this long: the connection is stalled, reconnect
    attempts: int = 5  # failed tries in a row (without a byte of progress) before giving up
    backoff_s: float = 1.0  # first wait between tries, doubled each time up to backoff_max_s
    backoff_max_s: float = 30.0
    connect_timeout_s: float = 15.0
    progress_interval_s: float = 0.1
    reserve_bytes: int = 2**30  # free space to leave on the disk


def disk_free(path: Path) -> int:
    """Free bytes on the disk holding `path` (its nearest existing folder)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


class _Retry(Exception):
    """A failure worth another try (network, stall, 5xx, short body)."""


def _retry_reason(exc: BaseException, stall_s: float) -> str | None:
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, _Retry):
        return str(exc)
    if isinstance(exc, httpx2.TimeoutException) and not isinstance(exc, httpx2.ConnectTimeout):
        return f"no data for {stall_s:g} s (the connection stalled)"
    if isinstance(exc, (httpx2.RemoteProtocolError, httpx2.ReadError)):
        return "the connection dropped"
    if isinstance(exc, httpx2.TransportError):
        return f"the connection failed ({type(exc).__name__})"
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        status = exc.response.status_code
        if status >= 500 or status in (408, 429):
            return f"the Hub answered HTTP {status}"
    return None


def _abort(response) -> None:
    """Break a blocked read at once (cancel): shut the socket down under the HTTP client."""
    stream = response.extensions.get("network_stream")
    shut_down(stream.get_extra_info("socket") if stream is not None else None)


def _origin(url: str) -> tuple:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


def download(repo_id: str, path_in_repo: str, *, paths: EmberPaths, endpoint: str, revision: str = "main",
             sha256: str | None = None, token: str | bool | None = None, cancel: CancelToken | None = None,
             options: DownloadOptions | None = None,
             disk_free: Callable[[Path], int] = disk_free) -> Generator[Progress, None, Path | None]:
    """Download one file; yields Progress, returns the final path (None when cancelled: paused, part kept).

    `sha256`: the LFS hash from the file list (looked up when not given). Raises UnsafePath,
    NotFound, NotEnoughDisk (before any byte), ChecksumMismatch, NetworkError or DownloadFailed.
    """
    dest = paths.model_destination(repo_id, path_in_repo)  # refuses '..', absolute paths, tricks
    job = _Download(repo_id, path_in_repo, dest, endpoint, revision, sha256, token, cancel or CancelToken(),
                    options or DownloadOptions(), disk_free)
    return (yield from job.run())


class _Download:
    def __init__(self, repo_id, path, dest, endpoint, revision, sha256, token, cancel, options, free) -> None:
        self.repo_id, self.path, self.dest, self.endpoint = repo_id, path, dest, endpoint
        self.revision, self.sha256, self.token, self.cancel = revision, sha256, token, cancel
        self.options, self.free = options, free
        self.part, self.sidecar = part_path(dest), sidecar_path(dest)
        self.record = PartRecord.load(self.sidecar)
        if self.record is None or (self.record.repo, self.record.path) != (repo_id, path):
            self.record = PartRecord(repo_id, revision, path)
        self.record.revision = revision
        self.hasher = hashlib.sha256()
        self.done, self.total = 0, 0
        self.notice = ""
        self.prepared = False
        self.meter = RateMeter()

    @property
    def name(self) -> str:
        return self.dest.name

    def _save(self, **changes) -> None:
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self.record.save(self.sidecar, **changes)

    def run(self) -> Generator[Progress, None, Path | None]:
        if self.dest.is_file() and not self.part.exists():
            if self.record.state == "verifying" and self.sidecar.exists():
                # killed between the rename and saving "done": only a verified part is ever renamed
                self._save(state="done", error=None)
            size = self.dest.stat().st_size
            yield Progress(size, size, "B", f"{self.name} is already downloaded")
            return self.dest
        try:
            try:
                with hub_errors(self.endpoint, self.repo_id, self.path, self.revision):
                    return (yield from self._attempts())
            except OSError as exc:  # the disk: full, read-only, permissions
                raise DownloadFailed(f"Could not write {self.part}: {exc.strerror or exc}",
                                     "Check that the disk has space and Ember may write there.") from exc
        except (KeyboardInterrupt, GeneratorExit):
            if self.sidecar.exists():
                self._save(state="paused", error=None)
            raise
        except EmberError as exc:
            if self.sidecar.exists():
                self._save(state="failed", error=exc.message)
            raise

    def _attempts(self) -> Generator[Progress, None, Path | None]:
        failures = 0
        while not self.cancel.cancelled:
            before = self.done
            try:
                meta = self._metadata()
                yield from self._prepare(meta)
                if self.cancel.cancelled:
                    break
                if self.done < self.total:
                    yield from self._transfer(meta)
                if self.cancel.cancelled:
                    break
                return (yield from self._verify())
            except Exception as exc:
                if self.cancel.cancelled:
                    break
                reason = _retry_reason(exc, self.options.stall_timeout_s)
                if reason is None:
                    raise
                failures = 1 if self.done > before else failures + 1
                if failures >= self.options.attempts:
                    raise self._gave_up(exc, reason) from exc
                delay = min(self.options.backoff_max_s, self.options.backoff_s * 2 ** (failures - 1))
                if self.sidecar.exists():
                    self._save(state="downloading", error=reason)
                yield self._progress(f"Interrupted: {reason}. Retrying in {delay:.3g} s "
                                     f"(try {failures + 1} of {self.options.attempts})")
                if self.cancel.wait(delay):
                    break
        return (yield from self._paused())

    def _gave_up(self, exc: BaseException, reason: str) -> EmberError:
        import httpx2

        if isinstance(exc, httpx2.ConnectError):
            return unreachable(self.endpoint, exc)
        cls = NetworkError if isinstance(exc, httpx2.TransportError) else DownloadFailed
        hint = ("The Hub says too many requests: wait a few minutes, then try again (a logged-in user gets more)."
                if "HTTP 429" in reason else None)
        return cls(f"The download of {self.name} stopped: {reason}, {self.options.attempts} times in a row.", hint)

    def _paused(self) -> Generator[Progress, None, None]:
        if self.sidecar.exists():
            self._save(state="paused", error=None)
        yield self._progress("Paused")
        return None

    def _metadata(self):
        from huggingface_hub import get_hf_file_metadata, hf_hub_url

        url = hf_hub_url(self.repo_id, self.path, revision=self.revision, endpoint=self.endpoint)
        return get_hf_file_metadata(url, token=self.token, timeout=self.options.connect_timeout_s,
                                    endpoint=self.endpoint)

    def _prepare(self, meta) -> Generator[Progress, None, None]:
        """Check what the Hub says against the part on disk; the first time, also the disk space and
        the hash of the bytes already there."""
        if meta.size is None:
            raise DownloadFailed(f"The Hub did not say how big {self.name} is.")
        have = self.part.stat().st_size if self.part.exists() else 0
        changed = bool(self.record.etag and meta.etag and self.record.etag != meta.etag)
        if changed or have > meta.size:
            self.notice = ("The file changed on the Hub since the download started: starting again from zero. "
                           if changed else "The partial file was longer than the file: starting again. ")
            self.record.sha256 = self.sha256 = None  # the old file's hash
            self._restart()
            have = 0
        self.total = meta.size
        if self.prepared:
            return
        known = (self.sha256 or self.record.sha256 or "").lower()
        if known and meta.etag and SHA256_HEX.match(meta.etag) and meta.etag != known:
            known = ""  # an LFS etag is the file's SHA-256: the hash we had is an older file's, ask again
        self.sha256 = known or self._published_sha256(meta)
        needed = self.total - have + self.options.reserve_bytes
        free = self.free(self.dest.parent)
        if free < needed:
            raise NotEnoughDisk(f"Not enough disk space for {self.name}: it needs {human_size(needed)} (the rest "
                                f"of the file and 1 GiB to spare), {human_size(free)} is free.")
        # before any byte goes into the part: a part on disk is always described by its sidecar
        self._save(etag=meta.etag, size=meta.size, sha256=self.sha256, commit=meta.commit_hash,
                   state="downloading", error=None)
        if have:
            yield from self._hash_part(have)
        self.prepared = True

    def _published_sha256(self, meta) -> str | None:
        """The LFS SHA-256 from the repo's file list; for LFS files the linked etag is that hash too."""
        for f in list_repo_files(self.repo_id, endpoint=self.endpoint, revision=meta.commit_hash or self.revision,
                                 token=self.token):
            if f.path == self.path and f.sha256:
                return f.sha256
        return meta.etag if meta.etag and SHA256_HEX.match(meta.etag) else None

    def _hash_part(self, have: int) -> Generator[Progress, None, None]:
        """Resume: hash the bytes already downloaded, so the final hash covers the whole file."""
        last = 0.0
        with open(self.part, "rb") as f:
            while chunk := f.read(min(HASH_CHUNK, have - self.done)):
                self.hasher.update(chunk)
                self.done += len(chunk)
                if (now := time.monotonic()) - last >= self.options.progress_interval_s:
                    last = now
                    yield Progress(self.done, self.total, "B", f"Checking the {human_size(have)} already downloaded")
                if self.cancel.cancelled:
                    return

    def _restart(self) -> None:
        self.part.unlink(missing_ok=True)
        self.hasher = hashlib.sha256()
        self.done = 0
        self.prepared = False

    def _transfer(self, meta) -> Generator[Progress, None, None]:
        """One GET from `done` to the end, written to the part and hashed as it comes."""
        import httpx2
        from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

        url = meta.location
        headers = build_hf_headers(token=self.token)
        headers["Accept-Encoding"] = "identity"
        if _origin(url) != _origin(self.endpoint):
            headers.pop("authorization", None)  # a signed CDN address: the token stays on the Hub
        if self.done:
            headers["Range"] = f"bytes={self.done}-"
        timeout = httpx2.Timeout(self.options.stall_timeout_s, connect=self.options.connect_timeout_s)
        with get_session().stream("GET", url, headers=headers, timeout=timeout, follow_redirects=True) as response:
            unregister = self.cancel.on_cancel(lambda: _abort(response))
            try:
                hf_raise_for_status(response)
                if self.done and response.status_code == 200:
                    self.notice = "The server did not resume: downloading from the start. "
                    self._restart()
                    self.prepared = True
                elif response.status_code == 206:
                    start = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
                    if not start or int(start[1]) != self.done:
                        raise _Retry("the server resumed at the wrong place")
                yield from self._write(response)
            finally:
                unregister()
        if self.done < self.total and not self.cancel.cancelled:
            raise _Retry(f"the connection closed at {human_size(self.done)} of {human_size(self.total)}")

    def _write(self, response) -> Generator[Progress, None, None]:
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        with open(self.part, "r+b" if self.part.exists() else "wb") as f:
            f.seek(self.done)
            f.truncate()
            last = 0.0
            for chunk in response.iter_raw():
                f.write(chunk)
                self.hasher.update(chunk)
                self.done += len(chunk)
                now = self.meter.add(self.done)
                if now - last >= self.options.progress_interval_s:
                    last = now
                    yield self._progress()
                if self.cancel.cancelled or self.done > self.total:
                    break

    def _verify(self) -> Generator[Progress, None, Path]:
        self._save(state="verifying", error=None)
        yield Progress(self.done, self.total, "B", f"Verifying {self.name}")
        with open(self.part, "rb+") as f:
            os.fsync(f.fileno())
        size = self.part.stat().st_size
        digest = self.hasher.hexdigest()
        if size != self.total or (self.sha256 and digest != self.sha256.lower()):
            self.part.unlink(missing_ok=True)
            what = (f"its size is {size} bytes instead of {self.total}" if size != self.total else
                    f"its SHA-256 is {digest[:16]}…, the Hub publishes {self.sha256[:16]}…")
            raise ChecksumMismatch(f"{self.name} failed verification: {what}. The file was deleted; "
                                   "it is not in your library.")
        self.part.replace(self.dest)
        self._save(state="done", error=None, sha256=digest)
        check = "SHA-256 verified" if self.sha256 else "size checked (the Hub publishes no SHA-256 for it)"
        yield Progress(self.total, self.total, "B", f"Downloaded {self.name}: {check}")
        return self.dest

    def _progress(self, message: str | None = None) -> Progress:
        if message is None:
            speed = self.meter.rate()
            left = self.total - self.done
            eta = f" · {human_duration(left / speed)} left" if speed > 0 else ""
            message = (f"{self.notice}{human_size(self.done)} of {human_size(self.total)}"
                       f" · {human_size(speed)}/s{eta}")
        return Progress(self.done, self.total or None, "B", message)
