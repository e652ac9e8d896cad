"""User-facing words of the model setup wizard and ``lumen --check`` (kept apart from
desktop/messages.py, which the desktop teammate owns; same ``tr`` so both are translated alike)."""

from __future__ import annotations

from engine.protocol import Quantization
from engine.store.catalogue import ModelSpec, cpu_memory_bytes, gpu_memory_bytes
from engine.store.downloads import FailureKind
from engine.store.hardware import Hardware, Recommendation, gigabytes

from desktop.messages import tr

TITLE = "Set up a model"
INTRO = (
    "Lumen needs a MiniGPT-4 model on this computer. Choose a model, then download it or import "
    "official files you already have. After setup Lumen works without the internet."
)
CHECKING_GPU = "Checking your graphics card"
NO_GPU = "No supported graphics card was found. Models can run on the processor, slowly."
GPU_FOUND = "Graphics card: {name}, {free} free of {total}."

# Translators: {precision} is one of the PRECISION_NAMES below.
PRECISION_NAMES = {
    Quantization.NONE: "full precision",
    Quantization.INT8: "8-bit",
    Quantization.NF4: "4-bit",
    None: "processor only",
}
PRECISION_COST = {
    Quantization.NONE: "Fastest answers and the best quality.",
    Quantization.NF4: "Uses about half the memory. Answers stay fast; quality is very slightly lower.",
    Quantization.INT8: "Uses less memory than full precision, but answers are two to five times slower than 4-bit.",
    None: "No graphics card needed, but each description takes minutes instead of seconds.",
}
RECOMMEND_GPU = "Recommended on this computer: {precision} on your graphics card. {cost}"
RECOMMEND_CPU = "Recommended on this computer: processor only. {cost} It needs about {need} of memory."
MEMORY_UNKNOWN = "This computer's memory could not be read, so Lumen cannot tell whether it fits."
RECOMMEND_NOTHING = "This model is too large for this computer: it needs about {need} of memory and {have} is available."
MODEL_LINE = "{title}. Download about {size}. {state}"
INSTALLED = "Installed."
NOT_INSTALLED = "Not installed."
MEMORY_LINE = "Graphics memory needed: full precision {fp16}, 8-bit {int8}, 4-bit {nf4}. Processor only: {cpu} of memory."
GATED_NOTE = (
    "Llama 2 needs a free Hugging Face account: accept Meta's licence on the model page "
    "huggingface.co/meta-llama/Llama-2-7b-chat-hf, then paste an access token from your account "
    "settings into the token field, or log in once with the command hf auth login."
)
TOKEN = "Hugging Face &token"
TOKEN_DESC = "Only for Llama 2: an access token from your Hugging Face account. It is used for this download and not stored."

DOWNLOAD = "&Download"
DOWNLOAD_DESC = "Download the official files of the selected model and prepare it. You can cancel and continue later."
IMPORT = "&Import from a folder"
IMPORT_DESC = "Use official MiniGPT-4 files you already have. Choose the folder that holds them."
ADD_FILE = "&Add a file I downloaded"
ADD_FILE_DESC = "Choose a file you downloaded with your web browser, for example the MiniGPT-4 projection checkpoint."
CANCEL = "&Cancel"
CANCEL_DESC = "Stop the download or conversion. Downloaded parts are kept."
CLOSE = "C&lose"
MODEL_LIST = "Models"
MODEL_LIST_DESC = "The MiniGPT-4 models Lumen can use. Use the arrow keys to choose one."
DETAILS = "Model details"
PRECISION = "&Precision"
PRECISION_DESC = "How the language model is stored in memory. The recommended choice is selected."
RECOMMENDED_SUFFIX = " (recommended)"
PROGRESS = "Progress"
STATUS = "Status"

STARTING = "Starting download of {title}"
DOWNLOADING_PERCENT = "Downloading, {percent} percent"
VERIFYING_PERCENT = "Checking files, {percent} percent"
CONVERTING = "Preparing the model. This can take several minutes."
DOWNLOAD_PROGRESS = "Downloading {label}: {done} of {total}"
READY = "{title} is ready."
ADDED = "Added {name}."
CANCELLED = "Cancelled. Downloaded parts are kept; choose Download to continue."
SEARCHING = "Looking for official files in {folder}"
FOUND_ALL = "All official files found. Preparing the model."
MISSING_INTRO = "Some files are missing: {missing}."
MISSING_WORDS = {
    "eva": "the vision encoder, eva_vit_g.pth",
    "qformer": "the BLIP-2 Q-Former, blip2_pretrained_flant5xxl.pth",
    "projection": "the MiniGPT-4 projection checkpoint, a .pth file with minigpt4 in its name",
    "llm": "the language model folder with config.json, tokenizer.model and weight files",
}
BY_HAND = (
    "{name} must be downloaded with your web browser from {page}. When it is saved, choose "
    "Add a file I downloaded, then Download again."
)
FAILURES = {
    FailureKind.NETWORK: "The connection kept failing. Check the internet connection and choose Download to continue.",
    FailureKind.HTTP: "The server refused a file. Try again later.",
    FailureKind.AUTH: "Access was refused. For Llama 2, accept Meta's licence on the model page and log in with hf auth login.",
    FailureKind.CHECKSUM: "A downloaded file was damaged and has been deleted. Choose Download to fetch it again.",
    FailureKind.DISK_FULL: "There is not enough free disk space. Free some space and try again.",
    FailureKind.BROWSER_ONLY: "The server sent a web page instead of the file.",
    FailureKind.MISSING: "Some official files are missing.",
    FailureKind.CONVERSION: "The files could not be converted. They may be damaged or belong to another model.",
    FailureKind.OFFLINE: "Offline mode is on, so nothing can be downloaded.",
    FailureKind.CANCELLED: CANCELLED,
}
UNEXPECTED = "Setup failed unexpectedly. The details are in the log."


def precision_name(p: Quantization | None) -> str:
    return tr(PRECISION_NAMES[p])


def hardware_text(hw: Hardware) -> str:
    gpu = hw.best_gpu
    if gpu is None:
        return tr(NO_GPU)
    return tr(GPU_FOUND).format(name=gpu.name, free=gigabytes(gpu.free_bytes), total=gigabytes(gpu.total_bytes))


def recommendation_text(rec: Recommendation) -> str:
    if not rec.fits:
        return tr(RECOMMEND_NOTHING).format(need=gigabytes(rec.need_bytes), have=gigabytes(rec.available_bytes))
    if rec.device == "cpu":
        text = tr(RECOMMEND_CPU).format(cost=tr(PRECISION_COST[None]), need=gigabytes(rec.need_bytes))
        return text if rec.available_bytes is not None else f"{text} {tr(MEMORY_UNKNOWN)}"
    return tr(RECOMMEND_GPU).format(precision=precision_name(rec.precision), cost=tr(PRECISION_COST[rec.precision]))


def memory_text(spec: ModelSpec) -> str:
    fp16, int8, nf4 = (gigabytes(gpu_memory_bytes(spec, q)) for q in (Quantization.NONE, Quantization.INT8, Quantization.NF4))
    return tr(MEMORY_LINE).format(cpu=gigabytes(cpu_memory_bytes(spec)), fp16=fp16, int8=int8, nf4=nf4)


def missing_text(keys: tuple[str, ...]) -> str:
    return tr(MISSING_INTRO).format(missing="; ".join(tr(MISSING_WORDS[k]) for k in keys))


# ---------------------------------------------------------------- speech models (desktop.widgets.speech_models_dialog)
SPEECH_TITLE = "Speech models"
SPEECH_INTRO = (
    "Spoken questions are recognised on this computer. Lumen comes with Whisper tiny.en, which knows "
    "English only. Larger models hear more accurately, and the ones for many languages understand "
    "questions in other languages. Choose one and download it; after that no internet is needed."
)
SPEECH_LIST = "Speech models"
SPEECH_LIST_DESC = "Whisper models Lumen can download. Use the arrow keys to choose one."
SPEECH_LINE = "{title}. {languages}. Download about {size}. {state}"
ENGLISH_ONLY = "English only"
MANY_LANGUAGES = "Many languages"
SPEECH_DETAILS_TEXT = (
    "{title}. {languages}. {summary}\n"
    "Download about {size}. Memory while listening: about {memory}.\n"
    "Speed: a question takes about {slowdown} times as long as with the bundled model "
    "(OpenAI's figures on a graphics card; on the processor larger models fall further behind).\n"
    "Source: huggingface.co/{repo}"
)
SPEECH_DOWNLOAD_DESC = "Download the selected speech model. You can cancel and continue later."
SPEECH_REMOVE = "&Remove"
SPEECH_REMOVE_DESC = "Delete the selected speech model from this computer."
SPEECH_CANCEL_DESC = "Stop the download. Downloaded parts are kept."
SPEECH_STARTING = "Starting download of {title}"
SPEECH_READY = "{title} is installed."
SPEECH_REMOVED = "{title} was removed."
SPEECH_IDLE = "Choose a model, then Download."
SPEECH_FAILURES = {
    **FAILURES,
    FailureKind.MISSING: "The model's files are not all on the server. Try again later, or choose another model.",
    FailureKind.AUTH: "The server refused access to this model. Try again later.",
}

# the speech model row in Settings, Speech (desktop.widgets.speech_model_picker)
PICKER = "Speech recognition model"
PICKER_DESC = "Which Whisper model recognises spoken questions."
PICKER_BUNDLED = "{title}, bundled, English only"
PICKER_INSTALLED = "{title}, {languages}"
PICKER_MISSING = "{title}, missing: download it again"
MANAGE = "Do&wnload speech models…"
MANAGE_DESC = "Download a larger or multilingual speech model, or remove one."
NOTE = "About the speech model"
NOTE_OK = "{title}: {languages}. {summary}"
NOTE_ENGLISH_ONLY = (
    "{title} understands English only, so spoken questions in {language} will be refused. Choose a model for "
    "many languages, or download one with Download speech models."
)
SELECTED = "{title} is now the speech model. Press OK to keep the settings."

# lumen --check, speech input (desktop.check.check_speech_input)
CHECK_VOICE_MISSING = "Voice questions are not installed (pip install 'lumen-assistant[voice]')."
CHECK_BUNDLED_MISSING = "The bundled speech model is not installed."
CHECK_SPEECH_BUNDLED = "{title}, bundled, for questions in {language}."
CHECK_SPEECH_MODEL = "{title}, for questions in {language}."
CHECK_SPEECH_STANDIN = "Until then spoken questions use the bundled {title}."
