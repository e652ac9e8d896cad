"""The app's resource files: sounds, icons, prompt presets (found with engine.store.locations.resources_dir)."""

from __future__ import annotations

from pathlib import Path

from desktop.settings import PromptPreset, Settings
from engine.store.locations import resources_dir


def sound_path(name: str) -> Path:
    return resources_dir() / "sounds" / f"{name}.wav"


def icon_path(name: str = "lumen") -> Path:
    return resources_dir() / "icons" / f"{name}.png"


def preset_prompt(preset: PromptPreset) -> str:
    return (resources_dir() / "prompts" / f"{preset.value}.txt").read_text(encoding="utf-8").strip()


def _preset_used(settings: Settings) -> PromptPreset:
    if settings.prompt_preset is PromptPreset.CUSTOM and not settings.custom_prompt.strip():
        return PromptPreset.DETAILED  # Custom with nothing typed
    return settings.prompt_preset


def question_for(settings: Settings) -> str:
    """The question sent with a capture when the user did not type one."""
    preset = _preset_used(settings)
    return settings.custom_prompt.strip() if preset is PromptPreset.CUSTOM else preset_prompt(preset)


def question_label(settings: Settings) -> str:
    """How the transcript shows ``question_for``: as the preset, not as if the user had typed it."""
    from desktop import messages

    name = messages.tr(messages.PROMPT_PRESETS[_preset_used(settings).value])
    return messages.tr(messages.PRESET_PROMPT_ASKED).format(name=name)
