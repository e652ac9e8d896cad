"""Which Whisper model a spoken question goes to, decided just before it is sent.

The settings name a speech model (``Settings.speech_model``: "" = the bundled tiny.en, else an id
from ``engine.store.catalogue.SPEECH_CATALOGUE`` installed by ``engine.store.speech_models``). Before every
question the choice is checked without reading the weights (files present, sizes as recorded):

* the chosen model is there: ``Transcribe.model_path`` is its folder;
* it is missing or incomplete: say so, and use the bundled model, so the question still gets an
  answer; the message says how to fix it (download it again in Settings, Speech);
* the model in use understands English only and the spoken-question language is another one: the
  question is not sent (it could only be misheard) and the user is told what to change.

If the engine then cannot load the chosen model (a damaged ``model.bin`` of the right size), the
same recording is recognised again with the bundled model (``after_damage``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from desktop import messages
from engine.store.catalogue import BUNDLED_SPEECH, SpeechModelSpec, get_speech_model
from engine.store.speech_models import SpeechModelStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpeechChoice:
    spec: SpeechModelSpec  # the model that will recognise the question
    model_path: str | None  # for Transcribe.model_path; None = the bundled model
    notice: str | None = None  # to say before recognising (the chosen model is not usable)
    refusal: str | None = None  # to say instead of sending anything

    @property
    def bundled(self) -> bool:
        return self.model_path is None


def language_code(language: str) -> str:
    return language.strip().lower().replace("_", "-").split("-")[0]


def language_name(language: str) -> str:
    code = language_code(language)
    return messages.tr(messages.SPEECH_LANGUAGE_NAMES.get(code, code))


def _refusal(spec: SpeechModelSpec, language: str) -> str | None:
    if spec.english_only and language_code(language) not in ("", "en", "auto"):
        return messages.tr(messages.SPEECH_MODEL_ENGLISH_ONLY).format(title=spec.title, language=language_name(language))
    return None


class SpeechModelChooser:
    def __init__(self, store_factory: Callable[[], SpeechModelStore] = SpeechModelStore) -> None:
        self.store_factory = store_factory  # a new store each time: it follows LUMEN_MODELS_DIR
        self._told: set[str] = set()  # chosen models already reported missing: later questions get a short notice

    def choose(self, model_id: str, language: str) -> SpeechChoice:
        try:
            spec = get_speech_model(model_id)
        except KeyError:
            log.warning("unknown speech model %r in the settings; the bundled model is used", model_id)
            spec = BUNDLED_SPEECH
        if spec is BUNDLED_SPEECH:
            return SpeechChoice(spec, None, refusal=_refusal(spec, language))
        store = self.store_factory()
        problem = store.problem(spec.model_id)
        if problem is None:
            return SpeechChoice(spec, str(store.model_dir(spec.model_id)), refusal=_refusal(spec, language))
        log.warning("speech model %s unusable (%s); falling back to the bundled model", spec.model_id, problem)
        choice = self._fallback(spec, language, messages.SPEECH_MODEL_MISSING)
        if choice.notice and spec.model_id in self._told:  # said in full once; now only a reminder
            short = messages.tr(messages.SPEECH_MODEL_STILL_MISSING).format(title=spec.title, bundled=BUNDLED_SPEECH.title)
            return SpeechChoice(choice.spec, None, notice=short)
        self._told.add(spec.model_id)
        return choice

    def after_damage(self, failed: SpeechChoice, language: str) -> SpeechChoice:
        """The engine could not load ``failed``'s model: what to say, and the bundled model to retry
        with (``refusal`` set instead when the bundled model cannot understand the language, or when
        the bundled model itself was the one that failed)."""
        if failed.bundled:
            return SpeechChoice(failed.spec, None, refusal=messages.tr(messages.SPEECH_MODEL_BUNDLED_DAMAGED))
        return self._fallback(failed.spec, language, messages.SPEECH_MODEL_DAMAGED)

    def _fallback(self, chosen: SpeechModelSpec, language: str, why: str) -> SpeechChoice:
        text = messages.tr(why).format(title=chosen.title)
        if _refusal(BUNDLED_SPEECH, language):
            fix = messages.tr(messages.SPEECH_MODEL_NO_FALLBACK).format(language=language_name(language))
            return SpeechChoice(BUNDLED_SPEECH, None, refusal=f"{text} {fix}")
        use = messages.tr(messages.SPEECH_MODEL_USING_BUNDLED).format(title=BUNDLED_SPEECH.title)
        return SpeechChoice(BUNDLED_SPEECH, None, notice=f"{text} {use}")
