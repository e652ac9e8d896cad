"""Where the app's resource files live (source checkout, installed package or PyInstaller bundle)."""

from __future__ import annotations

import sys
from pathlib import Path

from desktop.settings import PromptPreset, Settings


def resources_dir() -> Path:
    bundle = getattr(sys, "_MEIPASS", None)  # PyInstaller one-dir/one-file bundles
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parents[1] / "resources"


def sound_path(name: str) -> Path:
    return resources_dir() / "sounds" / f"{name}.wav"


def icon_path(name: str = "lumen") -> Path:
    return resources_dir() / "icons" / f"{name}.png"


def preset_prompt(preset: PromptPreset) -> str:
    return (resources_dir() / "prompts" / f"{preset.value}.txt").read_text(encoding="utf-8").strip()


def question_for(settings: Settings) -> str:
    """The question sent with a capture when the user did not type one."""
    if settings.prompt_preset is PromptPreset.CUSTOM and settings.custom_prompt.strip():
        return settings.custom_prompt.strip()
    preset = PromptPreset.DETAILED if settings.prompt_preset is PromptPreset.CUSTOM else settings.prompt_preset
    return preset_prompt(preset)


def demo_model_dir() -> Path | None:
    path = resources_dir() / "demo_model"
    return path if (path / "lumen_model.json").exists() else None
