"""Choosing and downloading a Whisper model for spoken questions.

* desktop.speech_model_choice: which model a question goes to, the fallback to the bundled model and the
  refusal of a language the model cannot understand;
* the app end to end (desktop.app.build, the real engine worker in a thread, real faster-whisper):
  the settings' choice reaches ``Transcribe.model_path`` and transcribes an espeak-ng question; a
  missing or damaged choice is said and the bundled model answers instead;
* Settings, Speech and the speech model manager driven from the keyboard, downloading from the
  loopback fake hub (tests/fake_model_server.py).

An "installed" model here is the bundled tiny.en folder imported under a catalogue id: the only real
CTranslate2 Whisper weights on this machine.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QComboBox, QListWidget, QPlainTextEdit, QProgressBar, QWidget

from desktop import messages
from desktop.setup_jobs import PercentAnnouncer
from desktop.speech_output.speaker import Priority
from desktop.speech_model_choice import SpeechModelChooser
from desktop.microphone import failure_reason
from engine.perception import speech_recognition
from engine.store.catalogue import BUNDLED_SPEECH, get_speech_model
from engine.protocol import ErrorKind, Failed, Transcribe
from engine.store.speech_models import SpeechModelStore
from tests.desktop.test_setup_wizard import Spoken
from tests.desktop.test_voice_question_flow import lumen  # noqa: F401 (fixture: the app with the real worker)
from tests.fake_model_server import Behaviour, FakeServer, running_server
from tests.speech_samples import QUESTIONS, normalise, spoken_wav


@pytest.fixture
def bundled() -> Path:
    try:
        return speech_recognition.default_model_path()
    except speech_recognition.SpeechInputUnavailable as exc:
        pytest.skip(f"voice extra not installed: {exc}")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SpeechModelStore:
    monkeypatch.setenv("LUMEN_MODELS_DIR", str(tmp_path / "models"))  # what the app's default store uses
    return SpeechModelStore()


def install_copy(store: SpeechModelStore, model_id: str, source: Path) -> Path:
    return store.import_folder(get_speech_model(model_id), source)


# ---------------------------------------------------------------- the choice before each question


def test_the_choice_follows_the_settings_and_falls_back_honestly(store: SpeechModelStore, bundled: Path) -> None:
    chooser = SpeechModelChooser()
    plain = chooser.choose("", "en")
    assert plain.bundled and plain.spec is BUNDLED_SPEECH and not (plain.notice or plain.refusal)
    german = chooser.choose("", "de")
    assert german.refusal and "Whisper tiny.en understands English only, not German" in german.refusal

    out = install_copy(store, "whisper-base.en", bundled)
    chosen = chooser.choose("whisper-base.en", "en")
    assert chosen.model_path == str(out) and not (chosen.notice or chosen.refusal)
    assert "Whisper base.en understands English only, not French" in chooser.choose("whisper-base.en", "fr").refusal

    missing = chooser.choose("whisper-small", "en")  # chosen, never downloaded (or deleted since)
    assert missing.bundled and not missing.refusal
    assert missing.notice.startswith("The speech model Whisper small you chose is missing or incomplete.")
    assert "Download it again in Settings, Speech." in missing.notice and "bundled Whisper tiny.en" in missing.notice
    again = chooser.choose("whisper-small", "en")  # every later question: a short reminder, not the whole story
    assert again.bundled and again.notice == "Whisper small is still missing; using the bundled Whisper tiny.en."
    stuck = chooser.choose("whisper-small", "de")  # and the bundled model cannot understand German
    assert stuck.refusal and "Whisper small" in stuck.refusal and "questions in German cannot be recognised" in stuck.refusal

    (out / "model.bin").write_bytes(b"truncated")  # a damaged download of the wrong size
    assert chooser.choose("whisper-base.en", "en").notice.startswith("The speech model Whisper base.en you chose is missing")
    damaged = chooser.after_damage(chosen, "en")
    assert damaged.bundled and damaged.notice.startswith("The speech model Whisper base.en could not be loaded")
    assert chooser.after_damage(plain, "en").refusal == messages.SPEECH_MODEL_BUNDLED_DAMAGED


def test_engine_failures_name_their_reason() -> None:
    def reason(detail: str) -> str:
        return failure_reason(Failed(1, ErrorKind.UNAVAILABLE, detail))

    assert reason("SpeechInputUnavailable: the speech model in /x cannot be loaded: Variable ...") == "model_damaged"
    assert reason("SpeechInputUnavailable: /x is not a CTranslate2 Whisper model directory (missing model.bin)") == "model_damaged"
    assert reason("SpeechInputUnavailable: the speech model x understands English only, not 'de'") == "language"
    assert reason("SpeechInputUnavailable: faster-whisper is not installed") == "unavailable"
    assert "_" not in messages.voice_failure_text("model_damaged")


# ---------------------------------------------------------------- the app, end to end


def _voice(lumen):  # noqa: ANN001, ANN202
    return next(f for f in lumen.extensions if type(f).__name__ == "VoiceFeature")


def _ask_by_voice(qtbot, lumen, question: str, expect: str) -> list[Transcribe]:  # noqa: ANN001
    before = len(lumen.sent)
    _voice(lumen).recorder.recorded.emit(spoken_wav(question))
    qtbot.waitUntil(lambda: any(expect in t for t in lumen.speaker.texts), timeout=60_000)
    return [r for r in lumen.sent[before:] if isinstance(r, Transcribe)]


def _heard(lumen, question: str) -> bool:  # noqa: ANN001
    return any(normalise(t) == f"heard {question}" for t in lumen.speaker.texts)


@pytest.mark.system
def test_the_chosen_model_reaches_the_engine_and_transcribes(qtbot, lumen, store, bundled) -> None:  # noqa: ANN001, F811
    out = install_copy(store, "whisper-base.en", bundled)
    lumen.controller.settings = dataclasses.replace(lumen.controller.settings, speech_model="whisper-base.en")
    sent = _ask_by_voice(qtbot, lumen, QUESTIONS[0], "Heard")
    assert [(r.model_path, r.language) for r in sent] == [(str(out), "en")]
    assert _heard(lumen, QUESTIONS[0])
    assert speech_recognition.get_recognizer(out).model_path == out.resolve()  # that folder's model answered


@pytest.mark.system
def test_a_missing_choice_is_said_and_the_bundled_model_answers(qtbot, lumen, store, bundled) -> None:  # noqa: ANN001, F811
    lumen.controller.settings = dataclasses.replace(lumen.controller.settings, speech_model="whisper-medium.en")
    sent = _ask_by_voice(qtbot, lumen, QUESTIONS[1], "Heard")
    assert [r.model_path for r in sent] == [None]
    said = "\n".join(lumen.speaker.texts)
    assert "The speech model Whisper medium.en you chose is missing or incomplete" in said and _heard(lumen, QUESTIONS[1])


@pytest.mark.system
def test_a_damaged_choice_the_engine_cannot_load_is_retried_with_the_bundled_model(qtbot, lumen, store, bundled) -> None:  # noqa: ANN001, F811
    out = install_copy(store, "whisper-small.en", bundled)
    size = (out / "model.bin").stat().st_size
    (out / "model.bin").write_bytes(b"\0" * size)  # right size, wrong bytes: only loading finds it
    lumen.controller.settings = dataclasses.replace(lumen.controller.settings, speech_model="whisper-small.en")
    sent = _ask_by_voice(qtbot, lumen, QUESTIONS[2], "Heard")
    assert [r.model_path for r in sent] == [str(out), None]  # the same recording, then the bundled model
    assert any(t.startswith("The speech model Whisper small.en could not be loaded") for t in lumen.speaker.texts)
    assert _heard(lumen, QUESTIONS[2])


def test_languages_the_model_cannot_understand_are_refused(qtbot, lumen, store, bundled) -> None:  # noqa: ANN001, F811
    install_copy(store, "whisper-base.en", bundled)
    lumen.controller.settings = dataclasses.replace(lumen.controller.settings, speech_model="whisper-base.en",
                                                    speech_language="de")
    _voice(lumen).recorder.recorded.emit(spoken_wav(QUESTIONS[0]))
    qtbot.waitUntil(lambda: any("understands English only, not German" in t for t in lumen.speaker.texts), timeout=10_000)
    assert not [r for r in lumen.sent if isinstance(r, Transcribe)]  # refused before anything was sent
    # A model the catalogue calls multilingual that is not (the tiny.en folder under a multilingual id):
    # the engine's own check refuses, and the user hears why.
    install_copy(store, "whisper-small", bundled)
    lumen.controller.settings = dataclasses.replace(lumen.controller.settings, speech_model="whisper-small")
    sent = _ask_by_voice(qtbot, lumen, QUESTIONS[0], messages.VOICE_FAILURES["language"])
    assert [(r.model_path, r.language) for r in sent] == [(str(store.model_dir("whisper-small")), "de")]


# ---------------------------------------------------------------- Settings, Speech and the manager


def _dialog(qtbot, settings, store, spoken=None):  # noqa: ANN001, ANN202
    from desktop.widgets.settings_dialog import SettingsDialog

    dialog = SettingsDialog(settings, notify=spoken or Spoken(), speech_store=store)
    qtbot.addWidget(dialog)
    return dialog


def test_settings_offer_the_bundled_and_installed_models_with_a_note(qtbot, store, bundled) -> None:  # noqa: ANN001
    from desktop.settings import Settings

    install_copy(store, "whisper-base.en", bundled)
    dialog = _dialog(qtbot, Settings(speech_model="whisper-small"), store)  # chosen earlier, deleted since
    picker = dialog.speech_model
    assert [picker.combo.itemData(i) for i in range(picker.combo.count())] == ["", "whisper-base.en", "whisper-small"]
    assert picker.combo.itemText(2) == "Whisper small, missing: download it again" and picker.value == "whisper-small"
    assert "missing or incomplete" in picker.note.text() and "missing" in picker.combo.accessibleDescription()
    picker.combo.setCurrentIndex(1)
    assert picker.note.text().startswith("Whisper base.en: English only.")
    dialog.language.setCurrentIndex(dialog.language.findData("de"))  # the note follows the language at once
    assert "understands English only, so spoken questions in German will be refused" in picker.note.text()
    assert "German will be refused" in picker.combo.accessibleDescription()
    assert dialog.settings().speech_model == "whisper-base.en"
    picker.combo.setCurrentIndex(0)
    assert dialog.settings().speech_model == ""


def test_the_speech_row_is_named_and_reachable_from_the_keyboard(qtbot, store) -> None:  # noqa: ANN001
    from desktop.settings import Settings

    dialog = _dialog(qtbot, Settings(), store)
    dialog.show()
    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow, timeout=5000)  # shortcuts reach the active window only
    dialog.tabs.setCurrentIndex(2)
    picker = dialog.speech_model
    for w in (picker.combo, picker.manage):
        assert w.accessibleName() and "&" not in w.accessibleName() and w.accessibleDescription()
        assert w.focusPolicy() & Qt.FocusPolicy.TabFocus
    assert picker.note.wordWrap() and picker.note.accessibleName()
    qtbot.keyClick(dialog, Qt.Key.Key_N, Qt.KeyboardModifier.AltModifier)  # the label's mnemonic: Speech recog&nition model
    qtbot.waitUntil(lambda: picker.combo.hasFocus(), timeout=2000)
    assert "&w" in picker.manage.text().lower()  # Do&wnload speech models…


def _served(model: bytes) -> FakeServer:
    fake = FakeServer()
    files = {"config.json": b"{}", "model.bin": model, "tokenizer.json": b"{}", "vocabulary.txt": b"a\n"}
    fake.add_hub_repo("Systran/faster-whisper-base", files)
    return fake


@pytest.fixture()
def hub_online(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # only the loopback fake hub is reachable


def test_download_from_the_manager_selects_the_new_model(qtbot, store, hub_online) -> None:  # noqa: ANN001
    from desktop.settings import Settings
    from desktop.widgets.speech_models_dialog import SpeechModelsDialog

    spoken = Spoken()
    dialog = _dialog(qtbot, Settings(), store, spoken)
    dialog.show()
    picker = dialog.speech_model
    with running_server(_served(bytes(range(256)) * 12_000)) as srv:
        picker.open_manager()
        manager: SpeechModelsDialog = picker.dialog
        manager.endpoint, manager.announcer = srv.endpoint, PercentAnnouncer(step=10, min_interval=0)
        qtbot.waitUntil(manager.isVisible, timeout=2000)
        controls = [w for w in manager.findChildren(QWidget)
                    if isinstance(w, (QAbstractButton, QListWidget, QPlainTextEdit, QProgressBar, QComboBox))]
        for w in controls:
            assert w.accessibleName() and "&" not in w.accessibleName() and w.accessibleDescription(), w
        for button in (manager.download_button, manager.remove_button, manager.cancel_button, manager.close_button):
            assert "&" in button.text()
        assert manager.focusWidget() is manager.models  # the list has the focus when the window opens
        qtbot.keyClick(manager.models, Qt.Key.Key_Down)
        qtbot.keyClick(manager.models, Qt.Key.Key_Down)  # tiny, base.en, then base
        assert manager.spec.model_id == "whisper-base" and "Many languages" in manager.details.toPlainText()
        assert "huggingface.co/Systran/faster-whisper-base" in manager.details.toPlainText()
        assert not manager.remove_button.isEnabled()
        with qtbot.waitSignal(manager.installed, timeout=20_000) as done:
            qtbot.keyClick(manager.download_button, Qt.Key.Key_Space)
        qtbot.waitUntil(lambda: not manager.busy, timeout=5000)
    assert done.args == ["whisper-base"] and store.installed() == ["whisper-base"]
    assert spoken.items[0] == ("Starting download of Whisper base", Priority.NOW)
    assert ("Whisper base is installed.", Priority.NOW) in spoken.items
    percents = [t for t, p in spoken.items if t.startswith("Downloading,") and p is Priority.NORMAL]
    assert percents and manager.progress.value() == 100
    assert "Installed." in manager.models.item(2).text() and manager.remove_button.isEnabled()
    assert picker.value == "whisper-base" and dialog.settings().speech_model == "whisper-base"
    assert ("Whisper base is now the speech model. Press OK to keep the settings.", Priority.NEXT) in spoken.items
    # remove it again: the settings row goes back to the bundled model
    qtbot.keyClick(manager.remove_button, Qt.Key.Key_Space)
    assert store.installed() == [] and picker.value == "" and ("Whisper base was removed.", Priority.NOW) in spoken.items
    qtbot.keyClick(manager, Qt.Key.Key_Escape)  # nothing running: Escape closes
    qtbot.waitUntil(lambda: not manager.isVisible(), timeout=2000)


def test_escape_cancels_a_download_and_the_next_one_resumes(qtbot, store, hub_online) -> None:  # noqa: ANN001
    from desktop.widgets.speech_models_dialog import SpeechModelsDialog

    spoken = Spoken()
    data = bytes(range(256)) * 16_000  # 4 MB: several chunks
    fake = _served(data)
    model = next(p for p in fake.files if p.endswith("/model.bin"))
    fake.behaviour[model] = Behaviour(delay=0.02)
    with running_server(fake) as srv:
        manager = SpeechModelsDialog(spoken, store, endpoint=srv.endpoint, announcer=PercentAnnouncer(min_interval=0))
        qtbot.addWidget(manager)
        manager.show()
        manager.models.setCurrentRow(2)
        manager.download_button.click()
        qtbot.waitUntil(lambda: manager.progress.value() > 0, timeout=10_000)
        qtbot.keyClick(manager, Qt.Key.Key_Escape)
        qtbot.waitUntil(lambda: not manager.busy, timeout=10_000)
        assert spoken.texts[-1] == messages.CANCELLED and manager.isVisible()  # the first Escape only cancels
        part = store.partial_dir("whisper-base") / "model.bin.part"
        kept = part.stat().st_size
        assert 0 < kept < len(data) and not store.is_installed("whisper-base")
        fake.behaviour.clear()
        with qtbot.waitSignal(manager.installed, timeout=20_000):
            manager.download_button.click()
        assert [r for method, path, r in srv.log if path == model][-1] == f"bytes={kept}-"
    assert json.loads((store.model_dir("whisper-base") / "lumen_speech.json").read_text())["repo_id"] == "Systran/faster-whisper-base"
    shutil.rmtree(store.root)


# ---------------------------------------------------------------- lumen --check


@pytest.mark.system
def test_check_reports_the_speech_model_in_use(store, bundled, capsys, monkeypatch) -> None:  # noqa: ANN001
    from desktop import check
    from desktop.settings import Settings, save

    monkeypatch.setattr(check, "microphone_problem", lambda: None)  # the model is tested here (test_check: the microphone)

    item = check.check_speech_input(store.root)
    assert item.ready and item.summary == "Whisper tiny.en, bundled, for questions in English." and item.detail == str(bundled)
    save(Settings(speech_model="whisper-small"))
    item = check.check_speech_input(store.root)
    assert item.ready is False and item.summary.startswith("The speech model Whisper small you chose is missing")
    assert item.summary.endswith("Until then spoken questions use the bundled Whisper tiny.en.")
    out = install_copy(store, "whisper-small", bundled)
    save(Settings(speech_model="whisper-small", speech_language="fr"))
    assert check.main(["--models-dir", str(store.root), "--json"]) in (0, 1)
    by_area = {c["area"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert by_area["Speech input"] == {"area": "Speech input", "ready": True, "summary": "Whisper small, for questions in French.",
                                       "detail": str(out)}
    save(Settings(speech_model="", speech_language="fr"))
    item = check.check_speech_input(store.root)
    assert item.ready is False and "understands English only, not French" in item.summary


def test_the_speech_checks_load_no_model_library(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    code = ("import sys, desktop.check, desktop.speech_model_choice, desktop.widgets.speech_model_picker\n"
            "print(desktop.check.check_speech_input(None).line())\n"
            "bad = [m for m in ('torch', 'transformers', 'faster_whisper', 'ctranslate2') if m in sys.modules]\n"
            "assert not bad, bad\n")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "LUMEN_MODELS_DIR": str(tmp_path),
           "LUMEN_CONFIG_DIR": str(tmp_path / "config")}
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("Speech input: ")


def test_the_app_upgrades_a_version_1_settings_file_and_keeps_the_old_one(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    from tests.desktop.conftest import build_app

    path = tmp_path / "settings.json"
    v1 = {"schema_version": 1, "speech_language": "fr", "rate": 240}
    path.write_text(json.dumps(v1))
    lumen = build_app(qtbot, path, start=False)
    assert (lumen.settings.speech_model, lumen.settings.speech_language, lumen.settings.rate) == ("", "fr", 240)
    assert json.loads((tmp_path / "settings.json.v1").read_text()) == v1
    saved = json.loads(path.read_text())
    assert saved["schema_version"] == 2 and saved["speech_model"] == "" and saved["speech_language"] == "fr"
    assert lumen.startup_message is None  # nothing was wrong: no message
    lumen.engine.shutdown()
