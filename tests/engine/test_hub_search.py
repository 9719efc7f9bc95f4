"""Search, repo detail and GGUF file lists against the stand-in Hub; quantization names; Hub errors."""

from __future__ import annotations

import pytest

from engine.errors import HubError, NetworkError, NotFound
from engine.hub.files import RepoFile, group_gguf_files, list_gguf_files, match_files, parse_quantization
from engine.hub.search import model_card, repo_detail, search_models
from tests.support.hub_fixtures import SMOL_FILE, SMOL_REPO, closed_port_url

pytestmark = pytest.mark.timeout(60)


def test_search_finds_gguf_repos_with_their_details(hub_server):
    results = search_models("smollm2", endpoint=hub_server.url)
    assert [r.repo_id for r in results] == [SMOL_REPO]
    smol = results[0]
    assert smol.author == "bartowski" and smol.downloads == 12_000 and smol.likes == 50
    assert smol.license == "apache-2.0" and "gguf" in smol.tags
    assert smol.last_modified.year == 2024 and smol.last_modified.month == 11
    assert smol.to_dict()["last_modified"].startswith("2024-11-01")


def test_search_sorts_and_limits(hub_server):
    by = {sort: [r.repo_id for r in search_models("", endpoint=hub_server.url, sort=sort, limit=3)]
          for sort in ("downloads", "likes", "updated")}
    assert by["downloads"] == ["TheBloke/Mistral-7B-Instruct-v0.2-GGUF", "Qwen/Qwen2.5-7B-Instruct-GGUF", SMOL_REPO]
    assert by["likes"][:2] == ["TheBloke/Mistral-7B-Instruct-v0.2-GGUF", "Qwen/Qwen2.5-7B-Instruct-GGUF"]
    assert by["updated"][:2] == ["Qwen/Qwen2.5-7B-Instruct-GGUF", SMOL_REPO]
    everything = search_models("", endpoint=hub_server.url, limit=100)
    assert "meta-llama/Llama-3.1-8B-Instruct" not in {r.repo_id for r in everything}  # not a GGUF repo


def test_search_follows_pages(hub_server):
    hub_server.page_size = 2
    results = search_models("", endpoint=hub_server.url, limit=5)
    assert len(results) == 5
    pages = [path for method, path in hub_server.stats.requests if path.startswith("/api/models?")]
    assert len(pages) == 3


def test_repo_detail_has_card_and_gguf_files(hub_server, smollm2_path):
    detail = repo_detail(SMOL_REPO, endpoint=hub_server.url)
    assert detail.card.startswith("# SmolLM2 135M Instruct") and "license:" not in detail.card
    assert detail.summary.license == "apache-2.0"
    assert detail.commit and len(detail.commit) == 40
    files = {f.name: f for f in detail.files}
    assert set(files) == {SMOL_FILE, "SmolLM2-135M-Instruct-Q8_0.gguf", "SmolLM2-135M-Instruct-f16.gguf",
                          "SmolLM2-135M-Instruct-IQ2_XS.gguf"}  # config.json and README.md are not models
    q4 = files[SMOL_FILE]
    assert q4.quantization == "Q4_1" and q4.size == smollm2_path.stat().st_size
    assert q4.parts[0].sha256 == hub_server.repos[SMOL_REPO].files[SMOL_FILE].sha256
    assert [f.quantization for f in detail.files] == ["IQ2_XS", "Q4_1", "Q8_0", "F16"]  # by size


def test_model_card_of_a_repo_without_readme_is_empty(hub_server):
    assert model_card("evil/escape-GGUF", endpoint=hub_server.url) == ""


def test_split_files_are_one_entry_with_total_size(hub_server):
    files = {f.name: f for f in list_gguf_files("Qwen/Qwen2.5-7B-Instruct-GGUF", endpoint=hub_server.url)}
    assert set(files) == {"qwen2.5-7b-instruct-q4_k_m.gguf", "qwen2.5-7b-instruct-q8_0.gguf",
                          "fp16/qwen2.5-7b-instruct-fp16.gguf"}
    q8 = files["qwen2.5-7b-instruct-q8_0.gguf"]
    assert q8.is_split and q8.complete and len(q8.parts) == 2 and q8.quantization == "Q8_0"
    served = hub_server.repos["Qwen/Qwen2.5-7B-Instruct-GGUF"].files
    assert q8.size == sum(served[p].size for p in q8.paths) > 8e9
    fp16 = files["fp16/qwen2.5-7b-instruct-fp16.gguf"]
    assert fp16.quantization == "F16" and len(fp16.parts) == 4
    assert fp16.paths[0] == "fp16/qwen2.5-7b-instruct-fp16-00001-of-00004.gguf"


def test_grouping_marks_a_split_with_missing_parts_and_drops_unsafe_paths():
    files = group_gguf_files([RepoFile("m-Q4_K_M-00001-of-00003.gguf", 10), RepoFile("m-Q4_K_M-00003-of-00003.gguf", 5),
                              RepoFile("../evil.gguf", 1), RepoFile("/abs.gguf", 1), RepoFile("notes.txt", 1)])
    assert len(files) == 1
    assert files[0].name == "m-Q4_K_M.gguf" and not files[0].complete and files[0].size == 15


@pytest.mark.parametrize("name, quant", [
    ("Meta-Llama-3-8B-Instruct-Q4_K_M.gguf", "Q4_K_M"), ("mistral-7b-instruct-v0.2.Q8_0.gguf", "Q8_0"),
    ("gemma-2-9b-it-IQ2_XS.gguf", "IQ2_XS"), ("x-IQ4_NL.gguf", "IQ4_NL"), ("phi-3-mini-f16.gguf", "F16"),
    ("qwen-BF16.gguf", "BF16"), ("Q3-model-Q3_K_L.gguf", "Q3_K_L"), ("model-UD-Q4_K_XL.gguf", "Q4_K_XL"),
    ("qwen2.5-7b-instruct-q8_0-00001-of-00002.gguf", "Q8_0"), ("Q5_K_M/model-00001-of-00002.gguf", "Q5_K_M"),
    ("SmolLM2-135M-Instruct.Q4_1.gguf", "Q4_1"), ("tinyllama.gguf", None),
])
def test_quantization_from_file_name(name, quant):
    assert parse_quantization(name) == quant


def test_match_files_by_name_or_pattern(hub_server):
    files = list_gguf_files("Qwen/Qwen2.5-7B-Instruct-GGUF", endpoint=hub_server.url)
    assert [f.name for f in match_files(files, "*Q4_K_M*")] == ["qwen2.5-7b-instruct-q4_k_m.gguf"]
    assert [f.name for f in match_files(files, "qwen2.5-7b-instruct-q8_0-00002-of-00002.gguf")] == [
        "qwen2.5-7b-instruct-q8_0.gguf"]
    assert len(match_files(files, "*.gguf")) == 3


def test_unknown_repo_and_revision_say_so(hub_server):
    with pytest.raises(NotFound, match="No model named nobody/nothing on the Hub"):
        repo_detail("nobody/nothing", endpoint=hub_server.url)
    with pytest.raises(NotFound, match="no revision"):
        list_gguf_files(SMOL_REPO, endpoint=hub_server.url, revision="v9")


def test_unreachable_hub_says_check_your_network():
    endpoint = closed_port_url()
    for call in (lambda: search_models("x", endpoint=endpoint), lambda: repo_detail(SMOL_REPO, endpoint=endpoint)):
        with pytest.raises(NetworkError, match=f"Could not reach the Hub at {endpoint}: check your network"):
            call()


def test_hub_server_error_is_a_clear_hub_error(hub_server):
    hub_server.faults.api_status = 500
    with pytest.raises(HubError, match="answered with an error \\(HTTP 500\\)"):
        repo_detail(SMOL_REPO, endpoint=hub_server.url)
