"""Fit and speed estimates for described machines; the bandwidth measurement and its cache; settings."""

from __future__ import annotations

import json

import pytest

from engine.config import Settings, load_settings, save_settings, update_settings
from engine.gguf.inspect import inspect_gguf
from engine.gguf.memory import estimate_memory
from engine.paths import EmberPaths
from engine.runtime.bandwidth import measure_bandwidth, memory_bandwidth
from engine.runtime.fit import (
    EFFICIENCY,
    choose_gpu_layers,
    estimate_fit,
    guess_shape,
    learn_from_reply,
    predict_tokens_per_s,
    record_measured_speed,
    speed_calibration,
)
from engine.runtime.hardware import GpuInfo, HardwareInfo
from engine.store.db import connect
from engine.store.models_repo import ModelRepository

GB = 10**9
MISTRAL_Q4 = int(4.37 * GB)  # mistral-7b-instruct-v0.2.Q4_K_M.gguf


def machine(ram_free: float, vram_free: float = 0, backend: str = "cuda") -> HardwareInfo:
    gpus = [GpuInfo("described GPU", int(max(vram_free, 1) * GB), int(vram_free * GB), backend)] if vram_free else []
    return HardwareInfo(cpu_cores=8, ram_total=int(2 * ram_free * GB), ram_available=int(ram_free * GB),
                        gpu_offload_supported=bool(gpus), gpus=gpus)


def test_a_7b_q4_on_described_machines():
    big_gpu = estimate_fit(machine(16, vram_free=24), 4096, file_size=MISTRAL_Q4, quantization="Q4_K_M")
    assert big_gpu.kind == "full_gpu" and big_gpu.label == "full GPU offload"
    assert big_gpu.gpu_layers == big_gpu.total_layers == 33  # 32 layers + output, from the size rule
    small_gpu = estimate_fit(machine(16, vram_free=3), 4096, file_size=MISTRAL_Q4, quantization="Q4_K_M")
    assert small_gpu.kind == "partial" and 0 < small_gpu.gpu_layers < small_gpu.total_layers
    assert small_gpu.label == f"partial ({small_gpu.gpu_layers} layers)"
    assert small_gpu.vram_needed <= 3 * GB * 0.9
    laptop = estimate_fit(machine(8), 4096, file_size=MISTRAL_Q4, quantization="Q4_K_M")
    assert laptop.kind == "cpu" and laptop.label == "CPU only" and laptop.gpu_layers == 0
    tiny = estimate_fit(machine(4), 4096, file_size=MISTRAL_Q4, quantization="Q4_K_M")
    assert tiny.kind == "none" and tiny.label == "does not fit" and not tiny.fits


def test_the_kv_cache_counts():
    short = estimate_fit(machine(6), 4096, file_size=MISTRAL_Q4, quantization="Q4_K_M")
    long = estimate_fit(machine(6), 131072, file_size=MISTRAL_Q4, quantization="Q4_K_M")
    assert short.fits and not long.fits
    assert long.memory.kv_cache == pytest.approx(32 * short.memory.kv_cache)
    # the rule of thumb: ≈ 48 KiB × √(7.2 B) per token, about Llama 3 8B's 128 KiB
    per_token = short.memory.kv_cache / 4096
    assert 100 * 1024 < per_token < 160 * 1024


def test_a_70b_does_not_fit_a_gaming_pc():
    fit = estimate_fit(machine(32, vram_free=12), 8192, file_size=int(42.5 * GB), quantization="Q4_K_M")
    assert fit.kind == "none"
    assert guess_shape(int(42.5 * GB), "Q4_K_M", 8192).layers == 80


def test_after_download_the_header_decides(smollm2_path):
    info = inspect_gguf(smollm2_path)
    hw = machine(8, vram_free=0.2)
    fit = estimate_fit(hw, 4096, info=info)
    assert fit.from_header
    assert fit.memory == estimate_memory(info, 4096)
    assert fit.total_layers == info.block_count + 1
    assert fit.gpu_layers == choose_gpu_layers(info, hw, 4096)
    guessed = estimate_fit(hw, 4096, file_size=info.file_size, quantization="Q4_1")
    assert not guessed.from_header
    assert 0.5 < guessed.memory.total / fit.memory.total < 2  # the rule of thumb is in the right range


def test_predicted_speed_follows_bandwidth_and_offload():
    cpu = machine(16)
    expected = 20 * GB * EFFICIENCY / MISTRAL_Q4
    assert predict_tokens_per_s(MISTRAL_Q4, 0.0, cpu, 20 * GB) == pytest.approx(expected)
    fit = estimate_fit(cpu, 4096, file_size=MISTRAL_Q4, quantization="Q4_K_M", bandwidth=20 * GB)
    assert fit.tokens_per_s == pytest.approx(expected) and fit.speed_source == "estimate"
    assert "tokens/s (estimate)" in fit.speed_label
    gpu = estimate_fit(machine(16, vram_free=24), 4096, file_size=MISTRAL_Q4, quantization="Q4_K_M",
                       bandwidth=20 * GB)
    partial = estimate_fit(machine(16, vram_free=3), 4096, file_size=MISTRAL_Q4, quantization="Q4_K_M",
                           bandwidth=20 * GB)
    assert gpu.tokens_per_s > partial.tokens_per_s > fit.tokens_per_s


def test_measured_speed_calibrates_later_estimates(ember_home):
    paths = EmberPaths(ember_home)
    assert speed_calibration(paths, "CPU") == 1.0
    conn = connect(paths.db)
    repo = ModelRepository(conn)
    repo.upsert("/models/a.gguf", 100, 1.0, "added")
    ratio = record_measured_speed(paths, 10.0, 20.0, "CPU", model_path="/models/a.gguf", models_repo=repo)
    assert ratio == pytest.approx(0.5) and speed_calibration(paths, "CPU") == pytest.approx(0.5)
    assert repo.get("/models/a.gguf").measured_tps == 10.0
    assert speed_calibration(paths, "CUDA") == 1.0  # per backend
    record_measured_speed(paths, 30.0, 20.0, "CPU")
    assert speed_calibration(paths, "CPU") == pytest.approx(1.0)  # mean of 0.5 and 1.5
    conn.close()
    base = estimate_fit(machine(16), 4096, file_size=MISTRAL_Q4, quantization="Q4_K_M", bandwidth=20 * GB)
    calibrated = estimate_fit(machine(16), 4096, file_size=MISTRAL_Q4, quantization="Q4_K_M", bandwidth=20 * GB,
                              calibration=0.5)
    assert calibrated.tokens_per_s == pytest.approx(base.tokens_per_s / 2)
    assert calibrated.speed_source == "calibrated"
    measured = estimate_fit(machine(16), 4096, file_size=MISTRAL_Q4, quantization="Q4_K_M", bandwidth=20 * GB,
                            measured_tps=7.5)
    assert measured.tokens_per_s == 7.5 and "measured" in measured.speed_label


def test_a_reply_teaches_the_estimate_of_its_model(ember_home, smollm2_path):
    paths = EmberPaths(ember_home)
    conn = connect(paths.db)
    repo = ModelRepository(conn)
    repo.upsert(str(smollm2_path), smollm2_path.stat().st_size, 1.0, "added")
    info = inspect_gguf(smollm2_path)
    cpu = machine(16)
    shape_weights = estimate_memory(info, 2048).weights
    predicted = predict_tokens_per_s(shape_weights, 0.0, cpu, 10 * GB)
    short = learn_from_reply(paths, repo, str(smollm2_path), info, 0, 2048, completion_tokens=5,
                             tokens_per_s=50.0, hw=cpu, bandwidth=10 * GB)
    assert short is None and speed_calibration(paths, cpu.backend) == 1.0  # too short to measure
    ratio = learn_from_reply(paths, repo, str(smollm2_path), info, 0, 2048, completion_tokens=128,
                             tokens_per_s=predicted / 2, hw=cpu, bandwidth=10 * GB)
    assert ratio == pytest.approx(0.5)
    assert repo.get(str(smollm2_path)).measured_tps == pytest.approx(predicted / 2)
    later = estimate_fit(cpu, 2048, info=info, bandwidth=10 * GB, calibration=speed_calibration(paths, cpu.backend))
    assert later.tokens_per_s == pytest.approx(predicted / 2)  # the next estimate of this model is what was seen
    conn.close()


def test_bandwidth_is_measured_once_and_cached(ember_home):
    paths = EmberPaths(ember_home)
    calls = []

    def fake_measure():
        calls.append(1)
        return 12.5e9

    assert memory_bandwidth(paths, measure=fake_measure) == 12.5e9
    assert memory_bandwidth(paths, measure=fake_measure) == 12.5e9
    assert len(calls) == 1
    stored = json.loads(paths.settings.read_text())
    assert stored["machine"]["memory_bandwidth"]["bytes_per_s"] == 12.5e9  # a measurement, not a choice
    assert memory_bandwidth(paths, refresh=True, measure=lambda: 13e9) == 13e9


def test_bandwidth_measurement_gives_a_plausible_figure():
    value = measure_bandwidth(size_bytes=32 * 2**20, runs=2)
    assert 1e8 < value < 1e13  # between 100 MB/s and 10 TB/s


def test_settings_round_trip_and_atomic_write(tmp_path):
    folder = tmp_path / "settings-test"
    path = folder / "settings.json"
    assert load_settings(path) == Settings()
    save_settings(path, Settings(values={"model_folders": ["/x"], "n": 1}))
    assert load_settings(path).get("model_folders") == ["/x"]
    assert json.loads(path.read_text())["schema_version"] == 2
    assert json.loads(path.read_text())["preferences"]["model_folders"] == ["/x"]
    update_settings(path, lambda s: s.set("n", 2))
    assert load_settings(path).get("n") == 2
    assert [p.name for p in folder.iterdir()] == ["settings.json"]  # no temporary file left
    path.write_text("{not json")
    assert load_settings(path) == Settings()
    assert (folder / "settings.json.bad").exists()
