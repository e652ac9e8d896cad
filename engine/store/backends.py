"""Which back-end runs the language model: torch (today's path, CUDA) or llama.cpp (GGUF files on
Apple, AMD/Intel GPUs and processors). Torch-free: the engine decides with it when it loads a model,
and ``lumen --check`` says the same without importing torch. The llama.cpp decoder itself is
``engine.minigpt4.llamacpp_backend``; the GGUF files are made by ``engine.store.gguf_convert``.
"""

from __future__ import annotations

from engine.protocol import Backend


def llamacpp_installed() -> bool:
    """Whether llama-cpp-python is installed (the ``llamacpp`` extra) and its library loads."""
    try:
        import llama_cpp  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def choose_backend(requested: str, cuda_free_bytes: int | None, needed_bytes: int, gguf: list[str],
                   llamacpp: bool) -> tuple[Backend, str]:
    """(TORCH or LLAMACPP, why, in words) for the ``requested`` Backend value. CUDA with enough free memory -> torch (today's path);
    otherwise (Apple, AMD/Intel GPU, CPU only) llama.cpp when the folder has a GGUF file; a choice made
    in Settings wins."""
    if requested == Backend.TORCH:
        return Backend.TORCH, "torch, as chosen in Settings"
    if requested == Backend.LLAMACPP:
        if not llamacpp:
            return Backend.LLAMACPP, "llama.cpp, as chosen in Settings, but it is not installed (install the llamacpp extra)"
        if not gguf:
            return Backend.LLAMACPP, ("llama.cpp, as chosen in Settings, but the model has no GGUF file yet "
                                      "(convert it with 'lumen models gguf MODEL q4_k_m')")
        return Backend.LLAMACPP, f"llama.cpp with the {gguf[0]} GGUF file, as chosen in Settings"
    if cuda_free_bytes is not None and cuda_free_bytes >= needed_bytes:
        return Backend.TORCH, "torch on the NVIDIA GPU, which has enough free memory"
    where = "the NVIDIA GPU has too little free memory" if cuda_free_bytes is not None else "no NVIDIA GPU"
    if gguf and llamacpp:
        return Backend.LLAMACPP, f"llama.cpp with the {gguf[0]} GGUF file ({where})"
    if not llamacpp:
        return Backend.TORCH, f"torch ({where}; install the llamacpp extra for faster answers)"
    return Backend.TORCH, f"torch ({where}; convert the model with 'lumen models gguf MODEL q4_k_m' for faster answers)"
