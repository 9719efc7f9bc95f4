"""The stand-in Hub itself speaks the way the real one does (headers, redirects, Range, faults, shutdown)."""

from __future__ import annotations

import http.client
import json
import threading
from urllib.parse import urlsplit

import pytest

from tests.support.hub_fixtures import SMOL_FILE, SMOL_REPO, populate
from tests.support.hub_server import StandInHub

pytestmark = pytest.mark.timeout(30)


def request(url: str, method: str = "GET", headers: dict | None = None):
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_search_sorts_in_either_direction(hub_server):
    def ids(query):
        return [m["id"] for m in json.loads(request(f"{hub_server.url}/api/models?{query}")[2])]

    down = ids("filter=gguf&sort=downloads&direction=-1")
    assert down == ids("filter=gguf&sort=downloads")  # no direction: descending, as huggingface_hub >= 1.0 asks
    assert ids("filter=gguf&sort=downloads&direction=1") == list(reversed(down))
    assert request(f"{hub_server.url}/api/models?sort=stars")[0] == 400


def test_lfs_file_redirects_to_the_cdn_with_the_linked_headers(hub_server, smollm2_path):
    served = hub_server.repos[SMOL_REPO].files[SMOL_FILE]
    status, headers, _ = request(f"{hub_server.url}/{SMOL_REPO}/resolve/main/{SMOL_FILE}", "HEAD")
    assert status == 302 and headers["Location"].startswith(f"http://localhost:{hub_server.port}/cdn-lfs/")
    assert headers["X-Linked-Etag"] == f'"{served.sha256}"' and headers["X-Linked-Size"] == str(served.size)
    assert len(headers["X-Repo-Commit"]) == 40 and headers["ETag"] and headers["Accept-Ranges"] == "bytes"
    status, headers, body = request(headers["Location"], headers={"Range": "bytes=100-199"})
    assert status == 206 and headers["Content-Range"] == f"bytes 100-199/{served.size}"
    assert body == smollm2_path.read_bytes()[100:200]
    assert hub_server.stats.ranges == ["bytes=100-199"] and hub_server.stats.bytes_served == 100


def test_small_files_come_directly_and_missing_ones_say_why(hub_server):
    status, headers, body = request(f"{hub_server.url}/{SMOL_REPO}/resolve/main/README.md")
    assert status == 200 and body.startswith(b"---\nlicense: apache-2.0") and headers["ETag"]
    status, headers, _ = request(f"{hub_server.url}/{SMOL_REPO}/resolve/main/nope.gguf")
    assert status == 404 and headers["X-Error-Code"] == "EntryNotFound"
    assert request(f"{hub_server.url}/api/models/nobody/nothing")[1]["X-Error-Code"] == "RepoNotFound"
    hub_server.faults.status, hub_server.faults.status_times = 500, 1
    assert request(f"{hub_server.url}/{SMOL_REPO}/resolve/main/README.md")[0] == 500
    assert request(f"{hub_server.url}/{SMOL_REPO}/resolve/main/README.md")[0] == 200  # once only


def test_model_info_and_tree_list_sizes_and_lfs_hashes(hub_server):
    info = json.loads(request(f"{hub_server.url}/api/models/{SMOL_REPO}/revision/main?blobs=true")[2])
    sibling = next(s for s in info["siblings"] if s["rfilename"] == SMOL_FILE)
    assert sibling["lfs"]["sha256"] == hub_server.repos[SMOL_REPO].files[SMOL_FILE].sha256
    assert info["cardData"]["license"] == "apache-2.0" and info["downloads"] == 12_000
    tree = json.loads(request(f"{hub_server.url}/api/models/{SMOL_REPO}/tree/main")[2])
    assert {e["path"] for e in tree} >= {SMOL_FILE, "README.md", "config.json"}


def test_stop_breaks_a_stall_and_leaves_no_thread(smollm2_path):
    hub = populate(StandInHub(lfs_redirect=307).start(), smollm2_path)
    hub.faults.stall_after, hub.faults.stall_s = 1000, 60
    sha = hub.repos[SMOL_REPO].files[SMOL_FILE].sha256
    errors = []

    def stalled_read():
        try:
            request(f"http://127.0.0.1:{hub.port}/cdn-lfs/{sha}")
        except Exception as exc:  # the server went away mid-body
            errors.append(exc)

    reader = threading.Thread(target=stalled_read)
    reader.start()
    while hub.stats.bytes_served < 1000:
        threading.Event().wait(0.01)
    assert request(f"{hub.url}/{SMOL_REPO}/resolve/main/{SMOL_FILE}", "HEAD")[0] == 307
    hub.stop()
    reader.join(timeout=10)
    assert not reader.is_alive() and errors
    assert not [t for t in threading.enumerate() if t.name == "stand-in-hub" or "process_request" in t.name]
