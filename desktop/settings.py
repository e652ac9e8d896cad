"""User settings: a frozen dataclass stored as versioned JSON in the platform config directory.

``load`` never raises for bad content: a file that cannot be parsed is renamed to a ``.corrupt-*``
backup and defaults are used; single invalid fields fall back to their defaults. Either way the
result carries a message for the user. The settings dialog edits a copy and commits with
``dataclasses.replace``.

Versions: a file written by an older Lumen is brought up to ``SCHEMA_VERSION`` by the steps in
``MIGRATIONS`` (in memory; ``load`` reports ``migrated_from``). The app then calls ``upgrade_file``,
which keeps the old file as ``settings.json.v<N>`` and writes the new one; ``lumen --check`` only reads.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from desktop import messages
from engine.protocol import Backend, Quantization
from engine.store.catalogue import SPEECH_CATALOGUE
from engine.store.locations import read_settings, settings_path

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
# Where the model runs (Settings, Model, Run on): torch device names; the engine also takes "cuda:1".
DEVICES = ("auto", "cuda", "cpu", "mps")


class SpeechOutput(StrEnum):
    AUTO = "auto"  # the screen reader when one is running, the voice otherwise
    SCREEN_READER = "screen_reader"
    VOICE = "voice"
    BOTH = "both"


class PromptPreset(StrEnum):
    BRIEF = "brief"
    DETAILED = "detailed"
    TEXT = "text"
    CUSTOM = "custom"


class CaptureTarget(StrEnum):
    ALL_SCREENS = "all"  # every monitor as one image
    MONITOR = "monitor"  # the monitor under the mouse


@dataclass(frozen=True)
class Hotkeys:
    """Global hotkeys in Qt's portable text form ("Ctrl+Shift+F5"); "" means unbound.

    Defaults avoid Ctrl+Alt+letter (AltGr on many layouts) and the screen readers' modifiers
    (Insert, CapsLock); the command key opens a one-letter layer (see ``hotkeys.LAYER``).
    """

    command: str = "Ctrl+Shift+F12"
    describe_screen: str = "Ctrl+Shift+F5"
    describe_window: str = "Ctrl+Shift+F6"
    describe_monitor: str = "Ctrl+Shift+F7"
    region: str = "Ctrl+Shift+F8"
    ask: str = "Ctrl+Shift+F9"
    recall: str = "Ctrl+Shift+F10"
    stop: str = "Ctrl+Shift+F11"
    voice: str = "Ctrl+Shift+F2"  # hold while speaking a question (push-to-talk)
    describe_focus: str = "Ctrl+Shift+F1"  # the control the keyboard focus is on (desktop.focus)

    def items(self) -> list[tuple[str, str]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]


@dataclass(frozen=True)
class Settings:
    schema_version: int = SCHEMA_VERSION
    hotkeys: Hotkeys = field(default_factory=Hotkeys)
    prompt_preset: PromptPreset = PromptPreset.DETAILED
    custom_prompt: str = ""
    speech_output: SpeechOutput = SpeechOutput.AUTO
    voice: str = ""  # a pyttsx3 voice id; "" = the system default
    rate: int = 200  # words per minute
    volume: float = 1.0  # 0..1
    earcons: bool = True
    waiting_sound: bool = True
    model_dir: str = ""  # "" = automatic: the model installed last, else the demo (engine.store.model_choice)
    quantization: str = Quantization.NONE.value  # an engine.protocol.Quantization value
    device: str = "auto"  # one of DEVICES
    backend: str = Backend.AUTO.value  # an engine.protocol.Backend value: the language model's engine (lumen --check says which)
    ocr: bool = True
    capture_target: CaptureTarget = CaptureTarget.ALL_SCREENS
    max_new_tokens: int = 300
    speech_language: str = "en"  # language of spoken questions (a Whisper language code)
    speech_model: str = ""  # an installed engine.store.catalogue SPEECH_CATALOGUE id; "" = the bundled tiny.en


# max_new_tokens: the context window (GenerationSettings.max_length, 2000) must keep room for the prompt.
_RANGES: dict[str, tuple[float, float]] = {"rate": (80, 450), "volume": (0.0, 1.0), "max_new_tokens": (16, 1000)}
_CHOICES: dict[str, tuple[str, ...]] = {
    "quantization": tuple(q.value for q in Quantization),
    "device": DEVICES,
    "backend": tuple(b.value for b in Backend),
    "speech_language": ("en", "de", "fr", "es", "it", "nl", "pt", "pl", "sv"),
    "speech_model": ("", *(spec.model_id for spec in SPEECH_CATALOGUE)),
}


def _v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
    """Version 2 adds the speech recognition model; every version-1 file used the bundled tiny.en."""
    return {**raw, "speech_model": "", "schema_version": 2}


MIGRATIONS = {1: _v1_to_v2}  # from version N to N + 1


def migrate(raw: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """``raw`` brought up to SCHEMA_VERSION, and the version it had (a file without one is version 1,
    the first release; newer versions are left as they are)."""
    version = raw.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        version = 1
    found = version
    while version < SCHEMA_VERSION:
        raw = MIGRATIONS[version](raw)
        version += 1
    return raw, found


@dataclass(frozen=True)
class LoadResult:
    settings: Settings
    message: str | None = None  # for the user, when something was reset
    backup: Path | None = None
    migrated_from: int | None = None  # the file's older schema version, brought up to date in memory


def to_json(settings: Settings) -> str:
    return json.dumps(dataclasses.asdict(settings), indent=2, sort_keys=True)


def save(settings: Settings, path: Path | None = None) -> None:
    """Write atomically (temp file + replace) so a crash never leaves half a file."""
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(to_json(settings), encoding="utf-8")
    os.replace(tmp, path)




def load(path: Path | None = None) -> LoadResult:
    path = path or settings_path()
    if not os.path.lexists(path):
        return LoadResult(Settings())
    try:
        raw = read_settings(path)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        log.warning("settings file unreadable (%s); using defaults", str(exc)[:200])
        return _reset(path)
    raw, version = migrate(raw)
    settings, bad = from_dict(raw)
    if version > SCHEMA_VERSION:
        return LoadResult(settings, messages.tr(messages.SETTINGS_NEWER))
    migrated = version if version < SCHEMA_VERSION else None
    if migrated:
        log.info("settings file is version %d; migrated to %d", version, SCHEMA_VERSION)
    if bad:
        log.warning("invalid settings fields reset to defaults: %s", ", ".join(bad))
        return _reset(path, settings, migrated)
    return LoadResult(settings, migrated_from=migrated)


def _reset(path: Path, settings: Settings | None = None, migrated: int | None = None) -> LoadResult:
    """Defaults (or the valid fields, ``settings``) with the message that says where the old file
    was kept, or that it could not be kept (a read-only folder)."""
    backup = _backup(path, copy=settings is not None)
    text = (messages.tr(messages.SETTINGS_CORRUPT).format(backup=backup) if backup is not None
            else messages.tr(messages.SETTINGS_CORRUPT_NOT_KEPT).format(path=path))
    return LoadResult(settings or Settings(), text, backup, migrated)


def upgrade_file(result: LoadResult, path: Path | None = None) -> Path | None:
    """After a migration: keep the old file as ``settings.json.v<N>`` (an older Lumen can still use it)
    and write the migrated settings. Returns the kept copy; None when nothing was migrated or it failed."""
    if not result.migrated_from:
        return None
    path = path or settings_path()
    kept = path.with_name(f"{path.name}.v{result.migrated_from}")
    try:
        kept.write_bytes(path.read_bytes())
        save(result.settings, path)
    except OSError as exc:
        log.warning("could not write the migrated settings: %s", exc)
        return None
    return kept


def from_dict(raw: dict[str, Any]) -> tuple[Settings, list[str]]:
    """Build Settings from parsed JSON; invalid fields take their defaults and are listed."""
    defaults = Settings()
    values: dict[str, Any] = {}
    bad: list[str] = []
    for f in fields(Settings):
        if f.name == "schema_version" or f.name not in raw:
            continue
        try:
            values[f.name] = _validate(f.name, raw[f.name], getattr(defaults, f.name))
        except (TypeError, ValueError):
            bad.append(f.name)
    return dataclasses.replace(defaults, **values), bad


def _validate(name: str, value: Any, default: Any) -> Any:
    if isinstance(default, Hotkeys):
        if not isinstance(value, dict):
            raise TypeError(name)
        known = {f.name for f in fields(Hotkeys)}
        clean = {k: v for k, v in value.items() if k in known}
        if not all(isinstance(v, str) for v in clean.values()):
            raise TypeError(name)
        return Hotkeys(**clean)
    if isinstance(default, StrEnum):
        return type(default)(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise TypeError(name)
        return value
    if isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(name)
        lo, hi = _RANGES.get(name, (float("-inf"), float("inf")))
        if not lo <= value <= hi:
            raise ValueError(name)
        return type(default)(value)
    if isinstance(default, str):
        if not isinstance(value, str) or (name in _CHOICES and value not in _CHOICES[name]):
            raise ValueError(name)
        return value
    raise TypeError(name)  # pragma: no cover - every field type is handled above


def _backup(path: Path, copy: bool = False) -> Path | None:
    """The kept copy of a bad settings file (moved aside, or copied when ``copy``), None when it
    could not be written."""
    backup = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        if copy:
            backup.write_bytes(path.read_bytes())
        else:
            os.replace(path, backup)
    except OSError as exc:
        log.warning("could not back up settings: %s", exc)
        return None
    return backup
