"""GPU detection through a real nvidia-smi subprocess (a stand-in script on PATH) and the
precision recommendation for each catalogue model."""

from __future__ import annotations

from pathlib import Path

from engine.protocol import Quantization
from engine.store.catalogue import GB, get_model, gpu_memory_bytes
from engine.store.hardware import Gpu, Hardware, detect, parse_nvidia_smi, recommend
from tests.fake_gpu import RTX_3060, install_nvidia_smi


def test_parse_nvidia_smi_lines() -> None:
    gpus = parse_nvidia_smi(RTX_3060 + "\n1, NVIDIA H100 80GB HBM3, 81559, 80000, 550\n2, Odd, [N/A], [N/A], 1\n")
    assert [g.name for g in gpus] == ["NVIDIA GeForce RTX 3060", "NVIDIA H100 80GB HBM3"]
    assert gpus[0].total_bytes == 12288 * 1024 * 1024 and gpus[0].backend == "cuda"


def test_detect_runs_nvidia_smi(tmp_path: Path) -> None:
    exe = install_nvidia_smi(tmp_path, RTX_3060)
    hw = detect(nvidia_smi=str(exe), allow_torch_probe=False)
    assert hw.source == "nvidia-smi" and hw.best_gpu is not None and hw.best_gpu.free_bytes == 11800 * 1024 * 1024


def test_broken_driver_is_reported_not_raised(tmp_path: Path) -> None:
    exe = install_nvidia_smi(tmp_path, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver", 9)
    hw = detect(nvidia_smi=str(exe), allow_torch_probe=False)
    assert hw.gpus == () and "exit 9" in hw.problem


def _hw(free_gb: float, backend: str = "cuda") -> Hardware:
    free = int(free_gb * GB)
    return Hardware((Gpu(0, "GPU", free, free, backend),), 32 * GB, "test")


def test_memory_estimates_match_published_anchors() -> None:
    # docs/performance.md section 1: 7B 8-bit ~11.5 GB (authors), 13B 8-bit 16-22 GB, 7B fp16 "just over 16 GB"
    assert 10 * GB < gpu_memory_bytes(get_model("vicuna0-7b"), Quantization.INT8) < 12.5 * GB
    assert 16 * GB < gpu_memory_bytes(get_model("vicuna0-13b"), Quantization.INT8) < 22 * GB
    assert 16 * GB < gpu_memory_bytes(get_model("vicuna0-7b"), Quantization.NONE) < 19 * GB
    for model in ("vicuna0-7b", "vicuna0-13b", "llama2-7b"):
        spec = get_model(model)
        assert gpu_memory_bytes(spec, Quantization.NF4) < gpu_memory_bytes(spec, Quantization.INT8) < gpu_memory_bytes(spec, Quantization.NONE)


def test_recommendations() -> None:
    seven, thirteen = get_model("vicuna0-7b"), get_model("vicuna0-13b")
    big = recommend(seven, _hw(24))
    assert (big.device, big.precision, big.speed) == ("cuda", Quantization.NONE, "fast")
    assert big.alternatives == (Quantization.NF4, Quantization.INT8)
    mid = recommend(seven, _hw(11.8))
    assert mid.precision is Quantization.NF4 and mid.fits and Quantization.NONE not in mid.alternatives
    none = recommend(thirteen, _hw(6))
    assert none.device == "cpu" and none.precision is None and none.speed == "slow"
    mac = recommend(seven, _hw(12, "mps"))
    assert mac.device == "cpu"  # fp16 does not fit and bitsandbytes needs CUDA
    assert recommend(seven, _hw(48, "mps")).precision is Quantization.NONE
    cpu_only = recommend(seven, Hardware((), 8 * GB, "none"))
    assert cpu_only.device == "cpu" and not cpu_only.fits  # 8 GB RAM is not enough even on the CPU


def test_installed_memory_is_known_without_sysconf_as_on_windows_and_macos(monkeypatch) -> None:
    import os

    import psutil

    from engine.store import hardware

    monkeypatch.delattr(os, "sysconf")  # Windows has none; macOS lacks SC_AVPHYS_PAGES
    assert hardware._ram_bytes() == psutil.virtual_memory().total

