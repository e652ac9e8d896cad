"""Which MiniGPT-4 model Lumen loads, decided here and only here: for the app (at start-up and after
a settings change), ``lumen --check``, ``lumen models list``, the setup wizard's result and
``python -m engine describe`` without ``--model``. Torch-free and Qt-free (the command-line tools use
it; the engine never imports the desktop).

The rule, in order:

1. The model folder chosen in the settings (Settings, Model folder) wins. If that folder is gone or
   incomplete, that is said (``ModelChoice.notice``) and the rule goes on, so Lumen still answers.
2. Otherwise the model installed last in the model store (``lumen models download``, ``import``,
   ``quantize`` or the setup wizard; ``LUMEN_MODELS_DIR``, else the user data folder). So a newly
   installed model is used from the next start; the wizard's model is used at once.
3. Otherwise the bundled demo model, which knows only coloured shapes; the app says so at start-up.

"Usable" is checked cheaply (the model files are there and ``lumen_model.json`` can be read); the
engine checks every tensor when it loads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from engine.store.catalogue import CATALOGUE
from engine.store.core import CHECKSUMS
from engine.store.locations import demo_model_dir, read_settings, settings_path
from engine.store.model_folder import MODEL_FILES, MODEL_JSON, CheckpointError, read_json
from engine.store.model_store import ModelStore

log = logging.getLogger(__name__)
DEMO_TITLE = "the small demo model"
_PRECOMPUTED = ("-nf4", "-int8")  # lumen models quantize: <model_id>-<quantization>
# Said first when the folder chosen in the settings is unusable; the app says it through its translator.
CHOSEN_MODEL_UNUSABLE = ("The model folder chosen in the settings, {folder}, is missing or incomplete. Choose it again "
                         "in Settings, Model, or empty that field to let Lumen choose.")


class Origin(StrEnum):
    SETTINGS = "settings"  # the folder chosen in the settings
    STORE = "store"  # the model installed last in the model store
    DEMO = "demo"  # the bundled demo model
    NONE = "none"  # nothing usable


@dataclass(frozen=True)
class ModelChoice:
    path: Path | None  # the folder the engine loads; None: there is no usable model
    origin: Origin
    title: str = ""  # the model's name in words ("MiniGPT-4 with Vicuna 7B", "the small demo model")
    demo: bool = False  # the demo model (bundled, or chosen in the settings): it knows only coloured shapes
    notice: str | None = None  # the folder chosen in the settings is unusable: say this first
    installed: tuple[str, ...] = ()  # the store's usable models, newest first


def folder_problem(path: Path) -> str | None:
    """Why ``path`` is not a usable model folder (for logs and support), or None."""
    if not path.is_dir():
        return f"{path} does not exist"
    missing = [name for name in (MODEL_JSON, *MODEL_FILES) if not (path / name).exists()]
    if missing:
        return f"{path} lacks {', '.join(missing)}"
    try:
        read_json(path / MODEL_JSON)["config"]["name"]
    except (CheckpointError, KeyError, TypeError) as exc:
        return f"{path / MODEL_JSON} cannot be read: {type(exc).__name__}: {exc}"
    return None


def _found(path: Path, origin: Origin, notice: str | None, installed: tuple[str, ...]) -> ModelChoice:
    title = model_title(path)
    return ModelChoice(path, origin, title, title == DEMO_TITLE, notice, installed)


def model_title(path: Path) -> str:
    """The model's name for people: the catalogue title for a converted official model, the demo
    model as such (its manifest says ``"demo": true``), the configured name otherwise."""
    try:
        manifest = read_json(path / MODEL_JSON)
        name = str(manifest["config"]["name"])
    except (CheckpointError, KeyError, TypeError):
        return path.name
    if manifest.get("demo") is True:
        return DEMO_TITLE
    folder = path.name
    for suffix in _PRECOMPUTED:
        folder = folder.removesuffix(suffix)
    titles = {spec.model_id: spec.title for spec in CATALOGUE}
    return titles.get(name.removeprefix("minigpt4-")) or titles.get(folder) or name


def installed_newest_first(store: ModelStore) -> list[str]:
    """The store's usable models, the one installed last first (the checksum list is written last,
    by every install and quantize; ties by name)."""
    def installed_at(model_id: str) -> float:
        folder = store.model_dir(model_id)
        for name in (CHECKSUMS, MODEL_JSON):
            try:
                return (folder / name).stat().st_mtime
            except OSError:
                continue
        return 0.0

    usable = [m for m in store.installed() if folder_problem(store.model_dir(m)) is None]
    return sorted(sorted(usable), key=installed_at, reverse=True)


def choose(model_dir: str = "", store: ModelStore | None = None, demo: Path | None = None,
           translate: Callable[[str], str] = str) -> ModelChoice:
    """The model Lumen loads for the settings' ``model_dir`` ("" = automatic). ``demo`` defaults to
    the bundled demo model; ``translate`` words the notice (the app passes its translator)."""
    store = store or ModelStore()
    installed = tuple(installed_newest_first(store))
    notice = None
    if model_dir.strip():
        chosen = Path(model_dir.strip()).expanduser()
        problem = folder_problem(chosen)
        if problem is None:
            return _found(chosen, Origin.SETTINGS, None, installed)
        log.warning("the model folder in the settings is unusable: %s", problem)
        notice = translate(CHOSEN_MODEL_UNUSABLE).format(folder=chosen)
    if installed:
        return _found(store.model_dir(installed[0]), Origin.STORE, notice, installed)
    demo = demo if demo is not None else demo_model_dir()
    if demo is not None and folder_problem(demo) is None:
        return _found(demo, Origin.DEMO, notice, installed)
    return ModelChoice(None, Origin.NONE, notice=notice, installed=installed)


def saved_model_dir(path: Path | None = None) -> str:
    """The model folder chosen in the saved settings ("" = automatic), read as ``desktop.settings.load``
    reads it: "" when the file is missing or unreadable or the value is not text. Only read: a damaged
    file is the app's to set aside and report when it starts."""
    try:
        value = read_settings(path or settings_path()).get("model_dir", "")
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return ""
    return value if isinstance(value, str) else ""


def choose_from_settings(store: ModelStore | None = None) -> ModelChoice:
    """What the app would load now, from the saved settings (for the command-line tools)."""
    return choose(saved_model_dir(), store)


def setting_for(folder: Path, store: ModelStore | None = None) -> str:
    """The ``model_dir`` setting that makes Lumen use ``folder`` (a model just installed): automatic
    ("") for a model of the store, which is then the newest one, else the folder itself."""
    store = store or ModelStore()
    try:
        in_store = folder.resolve().parent == store.root.resolve()
    except OSError:
        in_store = False
    return "" if in_store else str(folder)
