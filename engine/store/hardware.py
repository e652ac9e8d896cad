"""Find the user's GPU without importing torch, and recommend how to run a model on it: the one
rule (``fitting_quantizations``) that the setup wizard, ``lumen --check``, ``lumen models list`` and
the loader's advice (``engine.minigpt4.loading.recommend``) all apply.

Detection order: ``nvidia-smi`` (ships with every NVIDIA driver, answers in ~50 ms and never loads
CUDA into our process); Apple silicon (Metal shares the machine's memory); otherwise, when running
from source, a short ``python -c "import torch ..."`` subprocess (covers ROCm builds). A frozen app
cannot start a plain Python, so there the subprocess is skipped.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from engine.minigpt4.config import MiniGPT4Config
from engine.protocol import Quantization
from engine.store.catalogue import GB, ModelSpec, cpu_memory_bytes, gpu_memory_bytes
from engine.store.memory import memory_bytes

log = logging.getLogger(__name__)
MIB = 1024 * 1024
NVIDIA_SMI_QUERY = ("--query-gpu=index,name,memory.total,memory.free,driver_version", "--format=csv,noheader,nounits")


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    total_bytes: int
    free_bytes: int
    backend: str  # "cuda" or "mps"
    driver: str = ""


@dataclass(frozen=True)
class Hardware:
    gpus: tuple[Gpu, ...]
    ram_bytes: int | None
    source: str  # "nvidia-smi", "apple", "torch", "none"
    problem: str = ""  # why detection failed, for the log and `lumen --check`

    @property
    def best_gpu(self) -> Gpu | None:
        return max(self.gpus, key=lambda g: g.free_bytes, default=None)


@dataclass(frozen=True)
class Recommendation:
    device: str  # "cuda", "mps" or "cpu"
    precision: Quantization | None  # None on the CPU (bfloat16, no quantisation)
    fits: bool  # False: even 4-bit does not fit; the CPU is the fallback
    need_bytes: int
    available_bytes: int | None
    speed: str  # "fast", "slower" (8-bit), "slow" (CPU); the wizard turns it into words
    alternatives: tuple[Quantization, ...] = ()  # other precisions that also fit


def parse_nvidia_smi(text: str) -> tuple[Gpu, ...]:
    gpus = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 4:
            continue
        try:
            index, total, free = int(parts[0]), int(float(parts[2])), int(float(parts[3]))
        except ValueError:  # "[N/A]" on some virtualised GPUs
            log.warning("unreadable nvidia-smi line: %r", line)
            continue
        driver = parts[4] if len(parts) > 4 else ""
        gpus.append(Gpu(index, parts[1], total * MIB, free * MIB, "cuda", driver))
    return tuple(gpus)


def _ram_bytes() -> int | None:
    """Installed memory on every OS (os.sysconf has no answer on Windows and macOS); None if unknown."""
    try:
        import psutil

        return int(psutil.virtual_memory().total) or None
    except Exception as exc:  # noqa: BLE001 - psutil missing or the OS refused: unknown, not a crash
        log.warning("installed memory unknown: %r", exc)
        return None


_TORCH_PROBE = (
    "import json, torch\n"
    "out = []\n"
    "if torch.cuda.is_available():\n"
    "    for i in range(torch.cuda.device_count()):\n"
    "        free, total = torch.cuda.mem_get_info(i)\n"
    "        out.append([i, torch.cuda.get_device_name(i), total, free])\n"
    "print(json.dumps(out))\n"
)


def detect(nvidia_smi: str | None = None, timeout: float = 10.0, allow_torch_probe: bool = True) -> Hardware:
    """Never raises: a failed probe is reported in ``Hardware.problem``."""
    ram = _ram_bytes()
    exe = nvidia_smi or shutil.which("nvidia-smi")
    problem = ""
    if exe:
        try:
            done = subprocess.run([exe, *NVIDIA_SMI_QUERY], capture_output=True, text=True, timeout=timeout)
            gpus = parse_nvidia_smi(done.stdout) if done.returncode == 0 else ()
            if gpus:
                return Hardware(gpus, ram, "nvidia-smi")
            problem = f"nvidia-smi exit {done.returncode}: {done.stderr.strip()[:300]}"
        except (OSError, subprocess.TimeoutExpired) as exc:
            problem = f"nvidia-smi failed: {exc}"
    if sys.platform == "darwin" and platform.machine() == "arm64" and ram:
        # Metal can use most of the unified memory; macOS keeps about a quarter for itself.
        return Hardware((Gpu(0, "Apple silicon GPU", ram, int(ram * 0.75), "mps"),), ram, "apple")
    if allow_torch_probe and not getattr(sys, "frozen", False):
        try:
            done = subprocess.run([sys.executable, "-c", _TORCH_PROBE], capture_output=True, text=True, timeout=120)
            rows = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else []
            gpus = tuple(Gpu(int(i), str(n), int(t), int(f), "cuda") for i, n, t, f in rows)
            if gpus:
                return Hardware(gpus, ram, "torch")
        except (OSError, subprocess.TimeoutExpired, ValueError, IndexError) as exc:
            problem = problem or f"torch probe failed: {exc}"
    return Hardware((), ram, "none", problem or "no NVIDIA or Apple GPU found")


SAFETY_MARGIN = 0.92  # leave room for the desktop, the browser, other apps on the same GPU
# fp16 first (fastest, exact), then 4-bit (fast with bitsandbytes' batch-1 kernels), 8-bit last:
# LLM.int8 is 2-5x slower than fp16 (docs/performance.md section 2), so it is never the default.
_ORDER = (Quantization.NONE, Quantization.NF4, Quantization.INT8)


def fitting_quantizations(config: MiniGPT4Config, free_bytes: int, backend: str,
                          element_bytes: int = 2) -> tuple[Quantization, ...]:
    """The quantisations of ``config`` that fit ``free_bytes`` on ``backend`` ("cuda", "mps" or
    "cpu"), best first. Quantised layers need bitsandbytes on CUDA; elsewhere only full precision
    is offered. ``element_bytes``: of the unquantised weights (2: fp16/bf16)."""
    usable = int(free_bytes * SAFETY_MARGIN)
    choices = _ORDER if backend == "cuda" else (Quantization.NONE,)
    return tuple(q for q in choices
                 if memory_bytes(config, q, element_bytes=element_bytes, on_cpu=backend == "cpu") <= usable)


def recommend(spec: ModelSpec, hardware: Hardware) -> Recommendation:
    gpu = hardware.best_gpu
    if gpu is not None:
        fitting = fitting_quantizations(spec.config(), gpu.free_bytes, gpu.backend)
        if fitting:
            best = fitting[0]
            return Recommendation(
                device=gpu.backend,
                precision=best,
                fits=True,
                need_bytes=gpu_memory_bytes(spec, best),
                available_bytes=gpu.free_bytes,
                speed="slower" if best is Quantization.INT8 else "fast",
                alternatives=tuple(fitting[1:]),
            )
    need = cpu_memory_bytes(spec)
    return Recommendation(
        device="cpu",
        precision=None,
        fits=hardware.ram_bytes is None or need <= hardware.ram_bytes,
        need_bytes=need,
        available_bytes=hardware.ram_bytes,
        speed="slow",
    )


def gigabytes(n: int | float | None) -> str:
    """'13.5 GB' (decimal units, as disks and downloads are labelled); small sizes in MB."""
    if n is None:
        return "unknown"
    return f"{n / GB:.1f} GB" if n >= GB / 10 else f"{n / 1e6:.1f} MB"


def describe_gpus(gpus: Sequence[Gpu]) -> str:
    if not gpus:
        return "none"
    return "; ".join(f"{g.name} ({gigabytes(g.free_bytes)} free of {gigabytes(g.total_bytes)})" for g in gpus)
