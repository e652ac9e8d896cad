"""Where Lumen's own files are on this computer, for the app and the command-line tools alike: the
bundled resources (the demo model among them), the model store's root and the settings file.
Torch-free and Qt-free.

The settings file is the desktop's (``desktop.settings`` writes and reads it whole); the engine side
reads one value of it, the model folder chosen in the settings (``engine.store.model_choice``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from engine.store.model_folder import MODEL_JSON

SETTINGS_FILE = "settings.json"
MAX_SETTINGS_BYTES = 1024 * 1024  # a real settings file is about 1 KB


def resources_dir() -> Path:
    """The app's resource files: beside the packages in a source checkout or an installed package,
    ``resources`` in a PyInstaller bundle."""
    bundle = getattr(sys, "_MEIPASS", None)  # PyInstaller one-dir/one-file bundles
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


def demo_model_dir() -> Path | None:
    """The bundled demo model (it knows only coloured shapes), or None when it is not there."""
    path = resources_dir() / "demo_model"
    return path if (path / MODEL_JSON).exists() else None


def models_root() -> Path:
    """Where the model store keeps models (and speech models): ``LUMEN_MODELS_DIR``, else
    ``platformdirs.user_data_dir("Lumen")/models``."""
    override = os.environ.get("LUMEN_MODELS_DIR")
    if override:
        return Path(override)
    from platformdirs import user_data_dir

    return Path(user_data_dir("Lumen", appauthor=False)) / "models"


def config_dir() -> Path:
    """``LUMEN_CONFIG_DIR``, else ``platformdirs.user_config_dir("Lumen")``."""
    override = os.environ.get("LUMEN_CONFIG_DIR")
    if override:
        return Path(override)
    from platformdirs import user_config_dir

    return Path(user_config_dir("Lumen", appauthor=False))


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


def read_settings(path: Path) -> dict:
    """The settings file's JSON object, for the app (``desktop.settings.load``) and the command-line
    tools alike: a regular file of at most ``MAX_SETTINGS_BYTES`` (a FIFO would hang start-up,
    /dev/zero never end), checked before reading. Raises OSError, UnicodeDecodeError, ValueError or
    RecursionError for anything else."""
    if not path.is_file():
        raise ValueError("is a folder" if path.is_dir() else "is not a regular file")
    with open(path, "rb") as file:
        data = file.read(MAX_SETTINGS_BYTES + 1)
    if len(data) > MAX_SETTINGS_BYTES:
        raise ValueError(f"larger than {MAX_SETTINGS_BYTES} bytes")
    raw = json.loads(data.decode("utf-8"))
    if not isinstance(raw, dict):
        raise ValueError("top level is not an object")
    return raw
