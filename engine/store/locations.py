"""Where Lumen's own files are on this computer, for the app and the command-line tools alike: the
bundled resources (the demo model among them), the model store's root and the settings file.
Torch-free and Qt-free.

The settings file is the desktop's (``desktop.settings`` writes and reads it whole); the engine side
reads one value of it, the model folder chosen in the settings (``engine.store.model_choice``).
"""

from __future__ import annotations

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
