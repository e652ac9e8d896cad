"""The typed, torch-free messages between the desktop app and the engine process.

The desktop talks to the engine only in these messages (what else of ``engine`` it may import is
in docs/design.md section 1), so the tray and window appear without importing torch. Messages are
frozen dataclasses pickled through a ``multiprocessing`` pipe (see ``engine.worker``).

Rules (docs/design.md section 3):
* The conversation belongs to the desktop and its turns are sent in full with every ``Describe``.
  Image bytes go once: the engine keeps a recomputable cache (image embeddings keyed by
  (conversation_id, image_id)) and answers ``ImagesNeeded`` when it lacks one (a restarted engine,
  an evicted image); the desktop then sends the same request again with those bytes.
* The engine never writes user-facing text. ``Failed.detail`` is for the log; the desktop maps
  ``ErrorKind`` to words.
* Text is streamed as deltas (``TextDelta``), never as the cumulative text.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class ErrorKind(StrEnum):
    MODEL_MISSING = "model_missing"  # no model directory / files not found
    MODEL_MISMATCH = "model_mismatch"  # files present but wrong keys, shapes or config
    NO_MODEL_LOADED = "no_model_loaded"  # Describe before a successful LoadModel
    OUT_OF_MEMORY = "out_of_memory"  # GPU or host memory exhausted
    OUT_OF_SHARED_MEMORY = "out_of_shared_memory"  # an Apple GPU (MPS): the memory it shares with the system
    BAD_IMAGE = "bad_image"  # not an image, corrupt, too large (decompression bomb)
    UNSUPPORTED_HARDWARE = "unsupported_hardware"  # e.g. 4-bit requested where bitsandbytes can't run
    BAD_REQUEST = "bad_request"  # malformed request (programming error on the caller's side)
    UNAVAILABLE = "unavailable"  # an optional capability (OCR, speech input) is not installed
    INTERNAL = "internal"  # anything else; detail has the traceback


def memory_error_kind(exc: BaseException) -> ErrorKind | None:
    """Which memory ran out, if ``exc`` says so: PyTorch's MPS raises RuntimeError("MPS backend out
    of memory ..."), CUDA torch.cuda.OutOfMemoryError, the host MemoryError."""
    text = str(exc).lower()
    if "mps backend out of memory" in text:
        return ErrorKind.OUT_OF_SHARED_MEMORY
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError" or "out of memory" in text:
        return ErrorKind.OUT_OF_MEMORY
    return None


class Quantization(StrEnum):
    """How the language model's linear layers are stored. The vision side is never quantised."""

    NONE = "none"
    INT8 = "int8"  # bitsandbytes LLM.int8 (the official `low_resource` path; slow)
    NF4 = "nf4"  # bitsandbytes 4-bit NormalFloat with double quantisation


class Backend(StrEnum):
    """Which back-end runs the language model (``engine.store.backends.choose_backend`` decides for AUTO)."""

    AUTO = "auto"  # torch on an NVIDIA GPU with enough free memory, else llama.cpp once the folder has a GGUF file
    TORCH = "torch"
    LLAMACPP = "llamacpp"  # llama.cpp with one of the folder's GGUF files (engine.store.gguf_convert)


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding options. Defaults are the official demo's (`Chat.answer_prepare`, current code)."""

    max_new_tokens: int = 300
    num_beams: int = 1
    do_sample: bool = True
    top_p: float = 0.9
    temperature: float = 1.0
    repetition_penalty: float = 1.05
    length_penalty: float = 1.0
    min_length: int = 1
    max_length: int = 2000  # context window rule: keep at most max_length - max_new_tokens positions
    seed: int | None = None
    stop_on_template: bool = True  # the demo's stop strings ("###") and end-of-sequence

    @classmethod
    def greedy(cls, **overrides: object) -> GenerationSettings:
        values: dict[str, object] = {"do_sample": False, "repetition_penalty": 1.0}
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ImageInput:
    """One image of a conversation, as bytes.

    ``encoding="encoded"``: any file format Pillow reads (PNG, JPEG, ...).
    ``encoding="rgb"``: raw 8-bit RGB rows, ``size`` = (width, height); used for screen captures so
    the desktop never spends time compressing a 4K PNG on the hot path.
    """

    image_id: str
    data: bytes
    encoding: Literal["encoded", "rgb"] = "encoded"
    size: tuple[int, int] | None = None


@dataclass(frozen=True)
class Turn:
    """One message of the conversation. A user turn may carry images (by id), shown before its text."""

    role: Literal["user", "assistant"]
    text: str
    image_ids: tuple[str, ...] = ()


# ---------------------------------------------------------------- requests (desktop -> engine)


@dataclass(frozen=True)
class LoadModel:
    model_dir: str
    quantization: Quantization = Quantization.NONE
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", "mps"
    dtype: str = "auto"  # "auto", "float32", "float16", "bfloat16"
    static_cache: bool = False  # static KV cache; on a GPU transformers then compiles the decoding step
    backend: Backend = Backend.AUTO
    gguf_precision: str | None = None  # llama.cpp: which GGUF file (None: the smallest converted one)


@dataclass(frozen=True)
class Describe:
    """Answer ``question`` as the next user turn after ``history``.

    ``new_image_ids`` are the images attached to this question (e.g. the capture just taken).
    ``images`` holds the bytes of the images the engine may not have (those not sent before in
    this conversation); the engine decodes and encodes only those it has not cached, and answers
    ``ImagesNeeded`` when an image the prompt refers to is neither cached nor in ``images``.
    ``context`` is optional grounding text (e.g. OCR of the capture) given to the model as a
    clearly separated part of the question.
    """

    request_id: int
    conversation_id: str
    question: str
    history: tuple[Turn, ...] = ()
    new_image_ids: tuple[str, ...] = ()
    images: tuple[ImageInput, ...] = ()
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    context: str = ""


@dataclass(frozen=True)
class ReadText:
    """OCR an image (works with no MiniGPT-4 model loaded). Answered by ``TextRead``.

    Served off the describing path (``engine.perception.ocr_jobs``): never delays a ``Describe``, and ``Cancel``
    ends it at once. ``background`` (grounding) jobs wait behind the user's own ("read the text")."""

    request_id: int
    image: ImageInput
    background: bool = False


@dataclass(frozen=True)
class Transcribe:
    """Offline speech recognition of a recording (16-bit mono PCM WAV bytes). Answered by ``Transcribed``."""

    request_id: int
    wav: bytes
    language: str = "en"
    model_path: str | None = None  # a CTranslate2 Whisper folder; None = the bundled tiny.en


@dataclass(frozen=True)
class Cancel:
    request_id: int


@dataclass(frozen=True)
class ForgetConversation:
    conversation_id: str


@dataclass(frozen=True)
class Shutdown:
    pass


Request = LoadModel | Describe | ReadText | Transcribe | Cancel | ForgetConversation | Shutdown


# ---------------------------------------------------------------- events (engine -> desktop)


@dataclass(frozen=True)
class GenerationStats:
    prompt_positions: int = 0  # LLM context length after the window rule
    reused_positions: int = 0  # of those, kept in the KV cache from the previous request (not prefilled)
    new_tokens: int = 0
    images_encoded: int = 0  # images run through the vision encoder for this request
    images_from_cache: int = 0
    image_seconds: float = 0.0
    first_token_seconds: float = 0.0  # request received -> first token sampled
    first_delta_seconds: float = 0.0  # request received -> first text delta (a whole word) sent on
    total_seconds: float = 0.0


@dataclass(frozen=True)
class Progress:
    stage: str  # "loading", "encoding image", ... (a key, mapped to words by the desktop)
    fraction: float | None = None
    request_id: int | None = None


@dataclass(frozen=True)
class ModelReady:
    summary: str  # e.g. "MiniGPT-4 vicuna0-7b, cuda (NVIDIA H100), bfloat16, nf4"
    device: str
    dtype: str
    quantization: Quantization
    gpu_memory_bytes: int | None = None
    warnings: tuple[str, ...] = ()  # keys such as "cpu_slow"
    # The square side the vision encoder takes. A desktop may resize a capture to (image_size,
    # image_size) with PIL bicubic itself (engine.image_io.model_input_image: bit-identical to the
    # engine's own first step) and send ~150 KB instead of a multi-megabyte raw frame.
    image_size: int | None = None


@dataclass(frozen=True)
class TextDelta:
    request_id: int
    text: str


@dataclass(frozen=True)
class Finished:
    request_id: int
    text: str  # the clean answer, as it should be stored in the conversation
    cancelled: bool = False
    stats: GenerationStats = field(default_factory=GenerationStats)


@dataclass(frozen=True)
class ImagesNeeded:
    """The ``Describe`` refers to images this engine has neither cached nor been sent (it was
    restarted, or evicted them): nothing was generated; send it again with these images' bytes."""

    request_id: int
    image_ids: tuple[str, ...]


@dataclass(frozen=True)
class TextLine:
    text: str
    box: tuple[int, int, int, int]  # left, top, right, bottom in image pixels
    confidence: float


@dataclass(frozen=True)
class TextRead:
    request_id: int
    lines: tuple[TextLine, ...]
    seconds: float = 0.0
    cancelled: bool = False  # a Cancel ended it; ``lines`` is empty

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


@dataclass(frozen=True)
class Transcribed:
    request_id: int
    text: str
    seconds: float = 0.0


HEARTBEAT_SECONDS = 1.0


@dataclass(frozen=True)
class Heartbeat:
    """Sent every ``HEARTBEAT_SECONDS``, from the start, by an engine thread that serves nothing
    else: it keeps coming however long a request computes, and stops only when the whole engine
    does (stopped, deadlocked in native code holding the interpreter, swapped to death)."""


@dataclass(frozen=True)
class Failed:
    request_id: int | None
    kind: ErrorKind
    detail: str  # for the log; never spoken
    path: str | None = None  # the file at fault (e.g. a damaged model file), for the desktop to name


def failure_for(request: object, exc: BaseException) -> Failed:
    """Map an exception to a typed failure (the engine's and its OCR process's one rule). An exception
    says its own kind with a ``kind`` attribute (ImageError, ModelLoadError, OCR/speech errors,
    MissingImage); running out of memory is recognised by ``memory_error_kind``. ``detail`` is for the log only."""
    rid = getattr(request, "request_id", None)
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    kind = getattr(exc, "kind", None)
    if kind is ErrorKind.BAD_IMAGE:
        pass  # the picture itself is at fault, whatever the message says
    elif memory_error_kind(exc):
        kind = memory_error_kind(exc)
    elif not isinstance(kind, ErrorKind):
        kind = ErrorKind.INTERNAL
    if kind is ErrorKind.INTERNAL:
        detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    path = getattr(exc, "path", None)
    return Failed(rid, kind, detail, path if isinstance(path, str) else None)


Event = Progress | ModelReady | TextDelta | Finished | ImagesNeeded | TextRead | Transcribed | Failed | Heartbeat
