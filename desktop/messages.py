"""Every user-facing string of the desktop app, in one place so it can be translated and tested.

Strings go through ``tr`` (Qt's translator when an application exists, the English text otherwise).
Comments starting with ``Translators:`` are meant for the people translating.
"""

from __future__ import annotations

from engine.protocol import ErrorKind, Quantization
from engine.store.catalogue import ModelSpec, cpu_memory_bytes, gpu_memory_bytes
from engine.store.downloads import FailureKind
from engine.store.hardware import Hardware, Recommendation, gigabytes
from engine.store.model_choice import ModelChoice


def tr(text: str) -> str:
    """Translate ``text`` in the "Lumen" context (identity until translations are installed)."""
    try:
        from PySide6.QtCore import QCoreApplication
    except ImportError:  # pragma: no cover - PySide6 is a hard dependency of the desktop
        return text
    return QCoreApplication.translate("Lumen", text)


APP_NAME = "Lumen"

# ---------------------------------------------------------------- acknowledgements (short, said at once)
DESCRIBING_SCREEN = "Describing screen"
DESCRIBING_WINDOW = "Describing window"
DESCRIBING_MONITOR = "Describing monitor"
DESCRIBING_REGION = "Describing region"
DESCRIBING_FOCUS = "Describing the focused control"
DESCRIBING_PHOTO = "Describing photo"
# Translators: a capture taken for a question the user is about to type (nothing is described yet).
CAPTURING_SCREEN = "Capturing screen"
CAPTURING_WINDOW = "Capturing window"
CAPTURING_MONITOR = "Capturing monitor"
CAPTURING_REGION = "Capturing region"
CAPTURING_FOCUS = "Capturing the focused control"
ASKING = "Asking"
STOPPED = "Stopped"
NOTHING_TO_STOP = "Nothing to stop"
DONE = "Done"
STILL_WORKING = "Still working"
IDLE = "Ready"
COMMAND_LAYER = "Lumen command"
COMMAND_LAYER_HELP = (
    "Lumen command keys: S screen, W window, M monitor, R region, F focused control, Q question, "
    "A last answer, T read text, D what Lumen is doing, X stop, E restart the engine, Escape cancel."
)
# Translators: answers to "what are you doing?" (command key, then D).
DOING_NOTHING = "Ready. Nothing is running."
DOING_CAPTURING = "Capturing the screen."
DOING_OPENING = "Opening the photo."
DOING_WAITING = "Waiting for the answer to start."
DOING_ANSWERING = "Answering; {count} sentences so far."
COMMAND_CANCELLED = "Cancelled"
UNKNOWN_COMMAND = "Unknown command key"

# ---------------------------------------------------------------- region drill-down
REGION_START = (
    "Region. Choose a cell with 1 to 9 as on a number pad, 7 is top left. "
    "Enter describes, Q asks, Backspace zooms out, Escape cancels."
)
REGION_CELL = "{name}, {width} by {height} pixels"
REGION_CELL_POINTS = "{name}, {width} by {height} points"  # macOS: screen sizes are in points, not pixels
REGION_TOO_SMALL = "This region is too small to zoom further"
REGION_TOP = "Whole screen"
REGION_ZOOMED_OUT = "Zoomed out"
REGION_CANCELLED = "Region cancelled"
REGION_CELL_NAMES = {
    7: "top left", 8: "top centre", 9: "top right",
    4: "middle left", 5: "centre", 6: "middle right",
    1: "bottom left", 2: "bottom centre", 3: "bottom right",
}

# ---------------------------------------------------------------- capture
CAPTURE_BLACK = (
    "The capture is completely black. A screen curtain, a locked screen or protected video may be "
    "hiding the screen, so there is nothing to describe."
)
CAPTURE_UNIFORM = "The capture is a single flat colour, with nothing to describe."
CAPTURE_BLANK = "The capture looks blank: almost nothing differs across it, so there is nothing to describe."
CAPTURE_FAILED = "The screen could not be captured."
CAPTURE_UNSUPPORTED = (
    "Screen capture is not available in this session. On Wayland Lumen asks the desktop's screenshot "
    "portal, which is missing or refused; photos still work."
)
SCREEN_RECORDING_DENIED = (
    "Lumen may not record the screen, so it would see only the wallpaper. Open System Settings, "
    "Privacy and Security, Screen Recording, turn Lumen on, then start Lumen again."
)
ACCESSIBILITY_DENIED = (
    "Lumen may not read the focused control. Open System Settings, Privacy and Security, "
    "Accessibility, turn Lumen on, then try again."
)
NO_ACTIVE_WINDOW = "That window or monitor was not found, so the whole screen is described instead."
# Wayland tells no application where other windows, the mouse or their controls are.
WAYLAND_WHOLE_SCREEN = {
    "window": "Wayland does not tell Lumen which window is active, so the whole screen is described instead.",
    "monitor": "Wayland does not tell Lumen where the mouse is, so the whole screen is described instead.",
    "focus": ("Wayland does not tell Lumen where the focused control is on the screen, so the whole screen is "
              "described instead."),
}
WAYLAND_NO_REGION = ("The region grid does not work on Wayland: the desktop does not tell Lumen where the monitors "
                     "are, nor lend it single keys. Describe the whole screen instead.")
NO_FOCUSED_CONTROL = ("The focused control could not be found through the accessibility interface, "
                      "so the whole screen is described instead.")

# ---------------------------------------------------------------- photos
PHOTO_ADDED = "Photo {name} added"
PHOTO_REJECTED = "That photo could not be used: {reason}"
NOTHING_TO_PASTE = "The clipboard has no image and no image file path."
IMAGE_REASONS = {
    "not_found": "the file was not found",
    "too_large": "the picture is too large to open safely",
    "not_an_image": "it is not an image Lumen can read",
    "unsupported_format": "Lumen opens only PNG, JPEG, WebP, GIF, BMP and TIFF pictures",
    "corrupt": "the file is damaged",
    "empty": "the file is empty",
    "unreadable": "the file could not be read",
    "folder": "it is a folder, not a picture",
    "not_a_file": "it is not a regular file",
    # Translators: engine.image_io.blank_problem results, as for screen captures.
    "black": "the photo is completely black",
    "uniform": "the photo is a single flat colour, with nothing to describe",
    "blank": "the photo looks blank: almost nothing differs across it",
}

# ---------------------------------------------------------------- conversation
NO_IMAGE_YET = "There is no image yet. Describe the screen or add a photo first."
EMPTY_QUESTION = "Type a question first."
NO_ANSWER_YET = "There is no answer yet."
NEW_CONVERSATION = "New conversation"
ANSWER_COPIED = "Last answer copied"
CONVERSATION_SAVED = "Conversation saved to {path}"
SAVE_FAILED = "The conversation could not be saved: {reason}"
ASK_PROMPT = "Type your question and press Enter"
# Translators: the prompt presets (Settings, Descriptions), by desktop.settings.PromptPreset value.
PROMPT_PRESETS = {"brief": "Brief", "detailed": "Detailed", "text": "Text-focused", "custom": "Custom"}
# Translators: the transcript's line for the built-in question sent with a capture or photo.
PRESET_PROMPT_ASKED = "Preset prompt: {name}"

# ---------------------------------------------------------------- engine and model
STARTING = "Lumen is starting"
ALREADY_RUNNING = "Lumen is already running"
MODEL_LOADING = "Loading the model"
MODEL_PROGRESS = "Loading the model, {percent} percent"
# Translators: {title} is a model's name, {runtime} one of the MODEL_ON_* phrases.
MODEL_READY = "Model ready: {title}, {runtime}."
MODEL_ON_GPU = "{precision}, on the graphics card"
MODEL_ON_CPU = "on the processor, so answers will be slow"
MODEL_PRECISIONS = {Quantization.NONE: "full precision", Quantization.INT8: "8-bit", Quantization.NF4: "4-bit"}
SET_UP_MINIGPT4 = "To set up MiniGPT-4, open Tools, Set up model, in the Lumen window: Alt+T, then M."
MODEL_READY_DEMO = ("Model ready. This is the small demo model: it only knows coloured shapes, not real screens or "
                    "photos.")
# The notice for an unusable model folder chosen in the settings is engine.store.model_choice's
# CHOSEN_MODEL_UNUSABLE (the command-line tools say it too); the app passes it through tr.
# Said once per load when the engine could not read the free memory (engine.minigpt4.loading: "memory_unknown").
MEMORY_UNKNOWN = ("Lumen could not read how much memory is free, so it could not check that the model fits; it "
                  "loaded the model in a precision that needs less memory. If the computer slows down or answers "
                  "fail, close other programs.")
NO_MODEL_CONFIGURED = "No model is set up yet."
UNNAMED_MODEL = "the model"
ENGINE_RESTARTED = "The engine stopped unexpectedly and was restarted. Your conversation is kept; ask again to continue."
ENGINE_HUNG = "The engine stopped responding and was restarted. Your conversation is kept; ask again to continue."
ENGINE_GAVE_UP = ("The engine keeps stopping, so it was not restarted. Your conversation is kept. To try again, "
                  "press the command key, then E, or choose Restart engine in the Tools menu.")
ENGINE_NOT_RUNNING = "The engine is not running. To start it again, press the command key, then E."
ENGINE_STARTING_AGAIN = "Starting the engine again."
ENGINE_RUNNING = "The engine is running."
ENCODING_IMAGE = "Looking at the image"

_ERRORS: dict[ErrorKind, str] = {
    ErrorKind.MODEL_MISSING: "The model files were not found. Open Settings, Model, to choose the model folder.",
    ErrorKind.MODEL_MISMATCH: "The model files do not match what Lumen expects. Set up the model again.",
    ErrorKind.NO_MODEL_LOADED: "The model is not loaded yet. Wait for Model ready, then try again.",
    ErrorKind.OUT_OF_MEMORY: "Not enough memory for this request. Try a smaller precision in Settings, or a region of the screen.",
    # Translators: PyTorch on a Mac's GPU (MPS), where 8-bit and 4-bit precision do not exist.
    ErrorKind.OUT_OF_SHARED_MEMORY: ("The Mac's graphics chip ran out of memory; it shares the computer's memory with "
                                     "every open program. Close some programs and try again, or describe a region of "
                                     "the screen."),
    ErrorKind.BAD_IMAGE: "The image could not be read, so it was not described.",
    ErrorKind.UNSUPPORTED_HARDWARE: "This computer cannot run the chosen precision. Choose another precision in Settings, Model.",
    ErrorKind.BAD_REQUEST: "Lumen made a request the engine did not understand. Please report this.",
    ErrorKind.UNAVAILABLE: "That feature is not installed.",
    ErrorKind.INTERNAL: "Something went wrong in the engine. Your conversation is kept; try again.",
}


# Translators: {file} is a model file such as "llm/config.json".
MODEL_FILE_MISSING = "The model file {file} is missing. Set up the model again, or choose another model in Settings, Model."
# Translators: "lumen models gguf" is a command; keep it as it is.
GGUF_MISSING = ("This model has no llama.cpp file yet. Convert it with the command lumen models gguf, or choose "
                "Automatic in Settings, Model, Language model engine.")
MODEL_FILE_DAMAGED = ("The model file {file} is damaged or not what Lumen expects, so the model was not loaded. "
                      "Set up the model again, or choose another model in Settings, Model.")


def error_text(kind: ErrorKind, file: str | None = None) -> str:
    """The spoken and written message for an engine failure; ``file`` names a model file at fault."""
    if file and kind is ErrorKind.MODEL_MISSING:
        return tr(GGUF_MISSING) if file.endswith(".gguf") else tr(MODEL_FILE_MISSING).format(file=file)
    if file and kind is ErrorKind.MODEL_MISMATCH:
        return tr(MODEL_FILE_DAMAGED).format(file=file)
    return tr(_ERRORS[kind])


PROGRESS_STAGES = {
    "loading": MODEL_LOADING,
    "encoding image": ENCODING_IMAGE,
}


def progress_text(stage: str, fraction: float | None) -> str:
    if stage == "loading" and fraction is not None:
        return tr(MODEL_PROGRESS).format(percent=round(100 * fraction))
    return tr(PROGRESS_STAGES.get(stage, stage))


def model_ready_text(choice: ModelChoice, device: str, quantization: str) -> str:
    """What "Model ready" says: which model (engine.store.model_choice), how and where it runs; for the
    demo, that it is one."""
    if choice.demo:
        return f"{tr(MODEL_READY_DEMO)} {tr(SET_UP_MINIGPT4)}"
    if device.startswith("cpu"):
        runtime = tr(MODEL_ON_CPU)
    else:
        runtime = tr(MODEL_ON_GPU).format(precision=tr(MODEL_PRECISIONS.get(quantization, quantization)))
    return tr(MODEL_READY).format(title=choice.title or tr(UNNAMED_MODEL), runtime=runtime)


# ---------------------------------------------------------------- settings
SETTINGS_CORRUPT = "Your settings file could not be read, so defaults are used. The old file was kept as {backup}."
SETTINGS_CORRUPT_NOT_KEPT = ("Your settings file could not be read, so defaults are used. It could not be set aside "
                             "either, so it is still at {path}.")
SETTINGS_NEWER = "Your settings were written by a newer Lumen; defaults are used for what this version does not know."
SETTINGS_SAVED = "Settings saved"
SETTINGS_SAVE_FAILED = "Settings could not be saved: {reason}"
HOTKEYS_UNAVAILABLE = "Global hotkeys are not available: {reason}. Use the window's buttons and menus."
HOTKEY_IN_USE = "The hotkey {key} for {action} is used by another program; change it in Settings, Hotkeys."
MODAL_KEYS_UNAVAILABLE = ("The command key's letters and the region grid cannot work: {reason}. "
                          "Use the direct hotkeys, which you can change in Settings, Hotkeys.")

HOTKEY_ACTIONS = {
    # Translators: names of the global hotkey actions, shown in Settings and spoken.
    "command": "Command key (then a letter)",
    "describe_screen": "Describe the screen",
    "describe_window": "Describe the active window",
    "describe_monitor": "Describe the monitor under the mouse",
    "region": "Choose a region to describe",
    "ask": "Ask a question about the last image",
    "recall": "Recall the last answer",
    "stop": "Stop speech and answer",
    "voice": "Ask by voice (hold while speaking)",
    "describe_focus": "Describe the focused control",
}

HELP_TEXT = """Lumen describes your screen or a photo and answers questions about it.

Global keys (change them in Settings):
{hotkeys}

In the window: Ctrl+O opens a photo, Ctrl+Shift+V pastes an image or a copied image file, Enter in the question field asks,
Ctrl+T opens the transcript, Ctrl+Shift+C copies the last answer, Ctrl+S saves the conversation,
Ctrl+N starts a new conversation, Ctrl+Comma opens Settings, Escape stops.
Nothing is saved to disk unless you save it."""

# ---------------------------------------------------------------- voice questions and screen text
# (desktop.microphone, desktop.screen_text)
LISTENING = "Listening"
RECOGNISING = "Recognising"
# Translators: the recognised spoken question, said back briefly before it is asked.
HEARD = "Heard: {text}"
VOICE_FAILURES = {
    # Translators: keys are desktop.microphone failure reasons and engine.perception.speech_recognition.NothingHeard reasons.
    "no_audio_system": "Voice questions need the PortAudio sound library, which is not installed.",
    "no_microphone": "No microphone was found. Connect one, or type your question.",
    "microphone_error": "The microphone could not be used. It may be busy in another program.",
    "too_short": "That was too short. Hold the key while you speak.",
    "silence": "Nothing was heard. Check that the microphone is on and not muted.",
    "no_speech": "No speech was heard, only noise.",
    "unintelligible": "Sorry, the question was not understood. Say it again, or type it.",
    "bad_recording": "The recording could not be read. Try again.",
    "language": "The speech model understands English only. In Settings, Speech, choose English for spoken "
                "questions or a speech model for many languages, or type your question.",
    "model_damaged": "The speech model could not be loaded; it may be damaged. Download it again in Settings, Speech.",
}
VOICE_UNAVAILABLE = "Voice questions are not installed. Install Lumen with its voice option."
# Translators: the speech recognition model (desktop.speech_model_choice); {title} is a model name such as "Whisper small".
SPEECH_MODEL_MISSING = "The speech model {title} you chose is missing or incomplete. Download it again in Settings, Speech."
SPEECH_MODEL_STILL_MISSING = "{title} is still missing; using the bundled {bundled}."
SPEECH_MODEL_DAMAGED = "The speech model {title} could not be loaded; it may be damaged. Download it again in Settings, Speech."
SPEECH_MODEL_USING_BUNDLED = "This question is recognised with the bundled {title} instead."
SPEECH_MODEL_NO_FALLBACK = ("The bundled speech model understands English only, so questions in {language} cannot be "
                            "recognised until then. Type your question instead.")
SPEECH_MODEL_ENGLISH_ONLY = ("The speech model {title} understands English only, not {language}. In Settings, Speech, "
                             "choose a speech model for many languages or English, or type your question.")
SPEECH_MODEL_BUNDLED_DAMAGED = ("The bundled speech model could not be loaded. Reinstall Lumen with its voice option, "
                                "or choose a downloaded speech model in Settings, Speech.")
SPEECH_LANGUAGE_NAMES = {
    # Translators: languages of spoken questions (Settings, Speech), by Whisper language code.
    "en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian",
    "nl": "Dutch", "pt": "Portuguese", "pl": "Polish", "sv": "Swedish",
}
READING_TEXT = "Reading text"
SCREEN_TEXT_NONE = "No text was found."
SCREEN_TEXT_ONE_LINE = "1 line of text"
SCREEN_TEXT_LINES = "{count} lines of text"
OCR_UNAVAILABLE = "Text recognition is not installed."
GROUNDING_ON = "Answers now use the text found on the screen"
GROUNDING_OFF = "Answers no longer use the text found on the screen"


def voice_failure_text(reason: str) -> str:
    """Words for a voice-input failure reason (unknown reasons get the generic retry message)."""
    return tr(VOICE_FAILURES.get(reason, VOICE_FAILURES["unintelligible"]))


# ---------------------------------------------------------------- model setup (the wizard), speech models, lumen --check
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

DOWNLOAD_STARTING = "Starting download of {title}"
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
