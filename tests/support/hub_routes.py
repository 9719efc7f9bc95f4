"""The routes of the stand-in Hub (a mixin of its request handler): JSON API, resolve, CDN, bytes with faults."""

from __future__ import annotations

import re
import socket
import struct
import time
from urllib.parse import urlencode

SORT_KEYS = {"downloads": "downloads", "likes": "likes", "lastModified": "last_modified",
             "createdAt": "created_at", "trendingScore": "likes"}
POINTER_SIZE = 134


class _Dropped(Exception):
    """The connection was cut on purpose (or the server is stopping)."""


def _flag(query: dict, name: str) -> bool:
    return (query.get(name) or ["false"])[0].lower() in ("1", "true")


def _corrupt(chunk: bytes, offset: int) -> bytes:
    """Flip one byte in every 4 KiB (at absolute offsets ≡ 100 mod 4096): same length, other bytes."""
    data = bytearray(chunk)
    first = offset + (100 - offset) % 4096
    for pos in range(first, offset + len(data), 4096):
        data[pos - offset] ^= 0xFF
    return bytes(data)


class Routes:
    """Mixed into the handler, which provides hub, send_json, send_hub_error, cdn_url and the socket."""

    def route(self, parts: list[str], query: dict, head: bool) -> None:
        if parts[:2] == ["api", "models"]:
            if self.hub.faults.api_status:
                return self.send_hub_error(self.hub.faults.api_status, message="stand-in fault", head=head)
            if len(parts) == 2 or parts[2] == "":
                return self.search(query, head)
            repo = self._repo("/".join(parts[2:4]), head)
            if repo is None:
                return None
            rest = parts[4:]
            if not rest:
                return self.send_json(self.info(repo, query), head=head)
            if rest[0] in ("revision", "tree") and len(rest) >= 2:
                if not self._revision_ok(repo, rest[1], head):
                    return None
                if rest[0] == "tree":
                    return self.tree(repo, "/".join(rest[2:]), query, head)
                if len(rest) == 2:
                    return self.send_json(self.info(repo, query), head=head)
        elif len(parts) >= 5 and parts[2] == "resolve":
            return self.resolve("/".join(parts[:2]), parts[3], "/".join(parts[4:]), head)
        elif len(parts) == 2 and parts[0] == "cdn-lfs":
            return self.cdn(parts[1], head)
        return self.send_hub_error(404, message="Not found", head=head)

    # -- JSON API ----------------------------------------------------------------------------------
    def _repo(self, repo_id: str, head: bool):
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self.send_hub_error(404, "RepoNotFound", "Repository not found", head)
        return repo

    def _revision_ok(self, repo, revision: str, head: bool) -> bool:
        if revision in ("main", repo.sha):
            return True
        self.send_hub_error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
        return False

    def summary(self, repo, query: dict) -> dict:
        base = {"_id": repo.sha[:24], "id": repo.repo_id, "modelId": repo.repo_id, "likes": repo.likes,
                "downloads": repo.downloads, "trendingScore": repo.likes, "private": False, "tags": repo.tags,
                "pipeline_tag": "text-generation", "library_name": "gguf" if "gguf" in repo.tags else None,
                "createdAt": repo.created_at}
        more = {"author": repo.author, "lastModified": repo.last_modified, "sha": repo.sha,
                "gated": "manual" if repo.gated else False, "disabled": False,
                "cardData": {"license": repo.license, "tags": [t for t in repo.tags if ":" not in t]},
                "siblings": [{"rfilename": p} for p in sorted(repo.all_files())]}
        expand = query.get("expand")
        if expand:
            return {"_id": base["_id"], "id": base["id"], **{k: {**base, **more}.get(k) for k in expand}}
        if _flag(query, "full"):
            base.update({k: more[k] for k in ("author", "lastModified", "sha", "gated", "disabled", "siblings")})
        if _flag(query, "cardData"):
            base["cardData"] = more["cardData"]
        return base

    def search(self, query: dict, head: bool) -> None:
        text = (query.get("search") or [""])[0].lower()
        filters = query.get("filter", [])
        author = (query.get("author") or [None])[0]
        repos = [r for r in self.hub.repos.values()
                 if text in r.repo_id.lower() and all(f in r.tags for f in filters)
                 and (author is None or r.author == author)]
        sort = (query.get("sort") or [None])[0]
        if sort is not None:
            if sort not in SORT_KEYS:
                return self.send_hub_error(400, message=f"Invalid sort: {sort}", head=head)
            # direction=-1 (or absent: huggingface_hub >= 1.0 no longer sends it) is descending, 1 ascending
            ascending = (query.get("direction") or ["-1"])[0] == "1"
            repos.sort(key=lambda r: getattr(r, SORT_KEYS[sort]), reverse=not ascending)
        limit = int((query.get("limit") or [1000])[0])
        start = int((query.get("cursor") or [0])[0])
        page = min(limit, self.hub.page_size)
        items = [self.summary(r, query) for r in repos[start:start + page]]
        headers = {}
        if start + page < len(repos):
            flat = [(k, v) for k, values in query.items() if k != "cursor" for v in values]
            next_url = f"{self.hub.url}/api/models?{urlencode(flat + [('cursor', start + page)])}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        self.send_json(items, headers=headers, head=head)

    def info(self, repo, query: dict) -> dict:
        data = self.summary(repo, {"full": ["true"], "cardData": ["true"]})
        files = repo.all_files()
        data["usedStorage"] = sum(f.size for f in files.values())
        if _flag(query, "blobs"):
            data["siblings"] = [self._sibling(f) for _, f in sorted(files.items())]
        return data

    def _sibling(self, f) -> dict:
        entry = {"rfilename": f.path, "size": f.size, "blobId": f.blob_id}
        if f.lfs:
            entry["lfs"] = {"size": f.size, "sha256": f.sha256, "pointerSize": POINTER_SIZE}
        return entry

    def tree(self, repo, folder: str, query: dict, head: bool) -> None:
        prefix = folder.strip("/") + "/" if folder.strip("/") else ""
        recursive = _flag(query, "recursive")
        entries, folders = [], set()
        for path, f in sorted(repo.all_files().items()):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix):]
            if "/" in rest and not recursive:
                folders.add(prefix + rest.split("/")[0])
                continue
            entry = {"type": "file", "oid": f.blob_id, "size": f.size, "path": path}
            if f.lfs:
                entry["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": POINTER_SIZE}
            entries.append(entry)
        entries += [{"type": "directory", "oid": "0" * 40, "size": 0, "path": p} for p in sorted(folders)]
        if prefix and not entries:
            return self.send_hub_error(404, "EntryNotFound", f"{folder} does not exist", head)
        self.send_json(entries, head=head)

    # -- files ---------------------------------------------------------------------------------------
    def _status_fault(self, head: bool) -> bool:
        status = self.hub.faults.status
        if status and self.hub.take("status"):
            self.send_hub_error(status, message="stand-in fault", head=head)
            return True
        return False

    def resolve(self, repo_id: str, revision: str, path: str, head: bool) -> None:
        repo = self._repo(repo_id, head)
        if repo is None or not self._revision_ok(repo, revision, head):
            return
        f = repo.all_files().get(path)
        if f is None:
            return self.send_hub_error(404, "EntryNotFound", f"{path} does not exist on {revision}", head)
        if repo.gated:
            return self.send_hub_error(401, "GatedRepo", "Access to this repo is restricted", head)
        if self._status_fault(head):
            return
        common = {"X-Repo-Commit": repo.sha, "Accept-Ranges": "bytes"}
        if not f.lfs:
            return self.serve_bytes(f, head, etag=f'"{f.blob_id}"', extra=common)
        body = b"Found. Redirecting to the CDN"
        self.send_response(self.hub.lfs_redirect)
        for name, value in {**common, "Location": self.cdn_url(f.sha256), "ETag": f'"{f.blob_id}"',
                            "X-Linked-Etag": f'"{f.sha256}"', "X-Linked-Size": str(f.size),
                            "Content-Type": "text/plain; charset=utf-8",
                            "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def cdn(self, sha256: str, head: bool) -> None:
        f = self.hub.find_blob(sha256)
        if f is None:
            return self.send_hub_error(404, message="NoSuchKey", head=head)
        if self._status_fault(head):
            return
        self.serve_bytes(f, head, etag=f'"{sha256}"', extra={"Accept-Ranges": "bytes"})

    def serve_bytes(self, f, head: bool, etag: str, extra: dict) -> None:
        size = f.size
        header = self.headers.get("Range")
        if not head:
            self.hub.record(ranges=header)
        start, end, status = 0, size, 200
        if header and not self.hub.faults.ignore_range:
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
            if match and match[1]:
                start, end = int(match[1]), min(size, int(match[2]) + 1 if match[2] else size)
            elif match and match[2]:
                start = max(0, size - int(match[2]))
            if not match or (not match[1] and not match[2]) or start >= end:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        extra_bytes = self.hub.faults.extra_bytes
        length = end - start + extra_bytes
        if self.hub.faults.length_delta and not head and self.hub.take("length"):
            length += self.hub.faults.length_delta
            self.close_connection = True  # the body and its length disagree: the connection cannot be reused
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("ETag", etag)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        if head:
            return
        try:
            self._send_body(f, start, end)
            if extra_bytes:
                self.wfile.write(b"\xee" * extra_bytes)
        except _Dropped:
            self.close_connection = True
            if self.hub.faults.reset:  # SO_LINGER 0: closing sends RST, the client reads "connection reset"
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                return
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _send_body(self, f, start: int, end: int) -> None:
        """Send bytes [start, end), applying the faults; a drop or stall is taken when its offset is reached."""
        faults = self.hub.faults
        drop, stall, rate, wrong = faults.drop_after, faults.stall_after, faults.rate, faults.wrong_bytes
        if f.source is not None and drop is None and stall is None and not rate and not wrong:
            with open(f.source, "rb") as fh:  # the fast path: the kernel copies
                sent = self.connection.sendfile(fh, start, end - start)
            self.hub.record(bytes_served=sent)
            return
        stopping, sent, t0, offset = self.server.stopping, 0, time.monotonic(), start
        for chunk in f.read(start, end):
            data = _corrupt(chunk, offset) if wrong else chunk
            offset += len(chunk)
            while data:
                limit = len(data)
                if stall is not None and sent <= stall:
                    limit = min(limit, stall - sent)
                if drop is not None and sent <= drop:
                    limit = min(limit, drop - sent)
                if rate:
                    limit = min(limit, max(1024, int(rate / 20)))
                if limit <= 0:
                    if drop is not None and sent == drop:
                        drop = None
                        if self.hub.take("drop"):
                            raise _Dropped()
                    if stall is not None and sent == stall:
                        stall = None
                        if self.hub.take("stall") and stopping.wait(faults.stall_s):
                            raise _Dropped()
                    continue
                piece, data = data[:limit], data[limit:]
                self.wfile.write(piece)
                sent += len(piece)
                self.hub.record(bytes_served=len(piece))
                if rate:
                    delay = t0 + sent / rate - time.monotonic()
                    if delay > 0 and stopping.wait(delay):
                        raise _Dropped()
