"""The composed app: starts without torch, every control reachable and named, drop and paste."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QAbstractButton, QApplication, QComboBox, QLineEdit, QWidget

from desktop import messages
from desktop.settings import Settings, SpeechOutput
from tests.desktop.conftest import build_app

ROOT = Path(__file__).resolve().parents[2]


def test_app_starts_without_importing_torch(tmp_path) -> None:
    code = (
        "import sys; from PySide6.QtWidgets import QApplication; qa = QApplication([]);"
        "from desktop import app; from desktop.engine_client import thread_launcher;"
        "from tests.fakes import ScriptedEngine, RecordingSpeaker;"
        f"lumen = app.build(__import__('pathlib').Path(r'{tmp_path}') / 's.json',"
        " launcher=thread_launcher(ScriptedEngine().serve), speaker=RecordingSpeaker());"
        "lumen.window.show(); qa.processEvents();"
        "bad = [m for m in ('torch', 'transformers', 'engine.worker', 'Xlib') if m in sys.modules];"
        "print('LOADED', bad); assert not bad, bad"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "LOADED []" in out.stdout


def test_every_control_has_a_name_description_and_keyboard_focus(lumen) -> None:  # noqa: ANN001
    from PySide6.QtWidgets import QAbstractSpinBox, QKeySequenceEdit, QPlainTextEdit

    from desktop.widgets.settings_dialog import SettingsDialog

    kinds = (QAbstractButton, QLineEdit, QComboBox, QKeySequenceEdit, QAbstractSpinBox, QPlainTextEdit)
    dialog = SettingsDialog(lumen.settings)
    lumen.transcript.open()
    checked = 0
    for root in (lumen.window, lumen.transcript, dialog):
        for w in root.findChildren(QWidget):
            parent = w.parentWidget()
            if (not isinstance(w, kinds) or w.objectName() == "qt_menubar_ext_button" or w.isHidden()
                    or (parent is not None and isinstance(parent, (QComboBox, QAbstractSpinBox)))):
                continue  # Qt's own internals, read through their outer widget
            label = w.text() if hasattr(w, "text") and callable(w.text) else ""
            assert w.accessibleName(), f"{type(w).__name__} {label!r} has no accessible name"
            assert w.accessibleDescription(), f"{w.accessibleName()} has no description"
            reachable = w.focusPolicy() & Qt.FocusPolicy.TabFocus or w.objectName() == "" and isinstance(
                w.parentWidget(), QLineEdit)  # a line edit's clear button: Backspace/Delete do the same
            assert reachable, f"{w.accessibleName()} cannot be reached with Tab"
            checked += 1
    assert checked >= 30
    lumen.transcript.close()


def test_file_drop_describes_the_photo(lumen, qtbot, tmp_path) -> None:  # noqa: ANN001
    photo = tmp_path / "cat.png"
    Image.linear_gradient("L").resize((64, 48)).convert("RGB").save(photo)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photo))])
    pos = lumen.window.rect().center()  # PySide6 6.12 takes a QPoint here
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(lumen.window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(lumen.controller.answer_finished, timeout=5000):
        QApplication.sendEvent(lumen.window, drop)
    assert messages.DESCRIBING_PHOTO in lumen.speaker.texts
    assert lumen.controller.conversation.entries[0].image_labels == ("cat.png",)
    assert lumen.controller.conversation.images[lumen.controller.conversation.last_image_id].data == photo.read_bytes()


def test_dropping_a_broken_file_says_why_and_keeps_the_conversation(lumen, qtbot, tmp_path) -> None:  # noqa: ANN001
    with qtbot.waitSignal(lumen.controller.answer_finished, timeout=5000):
        lumen.controller.handle_action("describe_screen")
    before = list(lumen.controller.conversation.entries)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with qtbot.waitSignal(lumen.controller.status, timeout=5000,
                          check_params_cb=lambda text: text.startswith("That photo")):
        lumen.window.add_photo_file(broken)
    said = lumen.speaker.texts[-1]
    assert said.startswith("That photo could not be used")
    assert lumen.controller.conversation.entries == before


def test_paste_image_and_paste_file_path(lumen, qtbot, tmp_path) -> None:  # noqa: ANN001
    image = QImage(40, 30, QImage.Format.Format_RGB32)
    image.fill(Qt.GlobalColor.darkCyan)
    image.setPixelColor(10, 10, Qt.GlobalColor.white)  # a flat colour is refused as blank
    QApplication.clipboard().setImage(image)
    with qtbot.waitSignal(lumen.controller.answer_finished, timeout=5000):
        lumen.window.paste_photo()
    assert lumen.controller.conversation.entries[0].image_labels == ("pasted image",)

    photo = tmp_path / "receipt.jpg"
    Image.linear_gradient("L").resize((50, 70)).convert("RGB").save(photo)
    QApplication.clipboard().setText(str(photo))
    with qtbot.waitSignal(lumen.controller.answer_finished, timeout=5000):
        lumen.window.paste_photo()
    conversation = lumen.controller.conversation  # a new photo: a new conversation, the first one in its transcript
    assert conversation.entries[0].image_labels == ("receipt.jpg",) and len(conversation.entries) == 2
    assert "Image: pasted image" in conversation.to_text()

    QApplication.clipboard().setText("just some words")
    lumen.window.paste_photo()
    assert lumen.speaker.texts[-1] == messages.NOTHING_TO_PASTE


def test_transcript_opens_on_request_reads_from_top_and_saves(lumen, qtbot, tmp_path) -> None:  # noqa: ANN001
    assert not lumen.transcript.isVisible()
    with qtbot.waitSignal(lumen.controller.answer_finished, timeout=5000):
        lumen.controller.handle_action("describe_screen")
    assert not lumen.transcript.isVisible()  # never opened by itself
    lumen.controller.handle_action("recall")
    assert lumen.transcript.isVisible() and lumen.transcript.text.isReadOnly()
    cursor = lumen.transcript.text.textCursor()
    from_cursor = lumen.transcript.text.toPlainText()[cursor.position():]
    assert from_cursor.split("] ", 1)[1].startswith("Lumen: A window")  # at the last answer's line
    lumen.transcript.copy_last_answer()
    assert QApplication.clipboard().text() == lumen.controller.conversation.last_answer
    assert lumen.speaker.texts[-1] == messages.ANSWER_COPIED
    qtbot.keyClick(lumen.transcript.text, Qt.Key.Key_Escape)
    assert not lumen.transcript.isVisible()
    target = tmp_path / "saved.txt"
    assert lumen.transcript.save(target)
    assert target.read_text() == lumen.controller.conversation.to_text()
    assert lumen.speaker.texts[-1] == messages.CONVERSATION_SAVED.format(path=target)


def test_settings_dialog_refuses_conflicting_hotkeys(lumen, qtbot) -> None:  # noqa: ANN001
    from PySide6.QtGui import QKeySequence

    from desktop.widgets.settings_dialog import SettingsDialog

    dialog = SettingsDialog(lumen.settings)
    qtbot.addWidget(dialog)
    dialog.hotkey_edits["stop"].setKeySequence(QKeySequence("Ctrl+Shift+F5"))  # same as describe_screen
    dialog.hotkey_edits["ask"].setKeySequence(QKeySequence("Ctrl+Alt+Q"))
    dialog.accept()
    assert dialog.result() != dialog.DialogCode.Accepted and dialog.problems.isVisibleTo(dialog)
    assert "Ctrl+Shift+F5 is used for both" in dialog.problems.text() and "AltGr" in dialog.problems.text()
    dialog.hotkey_edits["stop"].setKeySequence(QKeySequence("Ctrl+Shift+F4"))
    dialog.hotkey_edits["ask"].setKeySequence(QKeySequence("Ctrl+Shift+F3"))
    dialog.rate.setValue(300)
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted
    lumen.apply_settings(dialog.settings())
    from desktop import settings as store

    saved = store.load(lumen.settings_path).settings
    assert saved.hotkeys.stop == "Ctrl+Shift+F4" and saved.rate == 300


def test_corrupt_settings_file_is_recovered_with_a_spoken_message(qtbot, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "settings.json"
    path.write_text("{not json")
    lumen = build_app(qtbot, path)
    try:
        assert any(t.startswith("Your settings file could not be read") for t in lumen.speaker.texts)
        assert lumen.settings == dataclasses.replace(Settings(), speech_output=SpeechOutput.VOICE)  # voice: the rig's
        assert list(tmp_path.glob("settings.json.corrupt-*"))[0].read_text() == "{not json"
    finally:
        lumen.engine.shutdown()


def test_closing_the_window_quits_without_a_tray_and_hides_with_one(lumen, qtbot) -> None:  # noqa: ANN001
    from PySide6.QtWidgets import QApplication

    lumen.window.quit_requested.disconnect(QApplication.quit)  # keep the test's event loop
    quits: list[bool] = []
    lumen.window.quit_requested.connect(lambda: quits.append(True))
    lumen.window.hide_on_close = True  # as when a tray icon exists
    lumen.window.close()
    assert not lumen.window.isVisible() and quits == []
    lumen.window.show()
    lumen.window.hide_on_close = False  # Xvfb has no tray: closing is quitting
    lumen.window.close()
    assert quits == [True]


def test_settings_dialog_sets_the_spoken_question_language(lumen) -> None:  # noqa: ANN001
    from desktop.widgets.settings_dialog import SettingsDialog

    dialog = SettingsDialog(lumen.settings)
    assert dialog.language.currentData() == "en"
    dialog.language.setCurrentIndex(dialog.language.findData("fr"))
    assert dialog.settings().speech_language == "fr"


def _close_modal_later(qtbot, seen: list[str]) -> None:  # noqa: ANN001
    """Record the title of the next modal dialog and close it (exec() blocks the test otherwise)."""
    def close() -> None:
        box = QApplication.activeModalWidget()
        if box is None:
            return
        seen.append(box.windowTitle())
        box.close()

    timer = __import__("PySide6.QtCore", fromlist=["QTimer"]).QTimer
    for ms in (200, 600, 1500):
        timer.singleShot(ms, close)


def test_f1_opens_the_keyboard_help(lumen, qtbot) -> None:  # noqa: ANN001
    lumen.window.activateWindow()
    qtbot.waitUntil(lumen.window.isActiveWindow, timeout=3000)
    seen: list[str] = []
    _close_modal_later(qtbot, seen)
    qtbot.keyClick(lumen.window, Qt.Key.Key_F1)
    qtbot.waitUntil(lambda: bool(seen), timeout=3000)
    assert seen == ["Lumen keyboard help"]


def test_hotkey_fields_keep_tab_shift_tab_and_alt_digit_for_moving(lumen, qtbot) -> None:  # noqa: ANN001
    from desktop.widgets.settings_dialog import SettingsDialog

    dialog = SettingsDialog(lumen.settings, parent=lumen.window)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow, timeout=3000)
    edits = list(dialog.hotkey_edits.values())
    before = dialog.hotkeys()
    edits[0].setFocus()
    qtbot.waitUntil(edits[0].hasFocus, timeout=3000)

    def press(key, modifier=Qt.KeyboardModifier.NoModifier) -> None:  # noqa: ANN001
        qtbot.keyClick(QApplication.focusWidget(), key, modifier)

    press(Qt.Key.Key_Tab)
    assert edits[1].hasFocus()
    press(Qt.Key.Key_Backtab, Qt.KeyboardModifier.ShiftModifier)
    assert edits[0].hasFocus()
    press(Qt.Key.Key_3, Qt.KeyboardModifier.AltModifier)  # the third row's Alt key
    assert edits[2].hasFocus()
    assert dialog.hotkeys() == before  # nothing was recorded on the way
    assert edits[2].accessibleName() == f"{messages.HOTKEY_ACTIONS['describe_window']}: Ctrl+Shift+F6"
    press(Qt.Key.Key_F3, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: dialog.hotkeys().describe_window == "Ctrl+Shift+F3", timeout=3000)
    assert edits[2].accessibleName() == f"{messages.HOTKEY_ACTIONS['describe_window']}: Ctrl+Shift+F3"


def test_a_wrapped_status_grows_the_window_and_clips_no_button(lumen, qtbot) -> None:  # noqa: ANN001
    window, status = lumen.window, lumen.window.status_label
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: status.text().startswith("Model ready"), timeout=5000)
    # "Model ready" with the demo model already takes three lines: start from one line. The layout settles
    # over a few event-loop turns (a fixed wait was flaky), so wait for each state.
    lumen.controller.notify("Stopped.")
    qtbot.waitUntil(lambda: status.document().size().height() <= status.height() < 2 * status.fontMetrics().lineSpacing() + 12,
                    timeout=3000)
    one_line, height = status.height(), window.height()
    lumen.controller.notify(messages.CAPTURE_UNSUPPORTED)  # three lines at the window's width
    assert status.text() == messages.CAPTURE_UNSUPPORTED

    def settled() -> None:  # the status line grew, every line of it shows, and no button gave up height for it
        assert one_line < status.height() and status.document().size().height() <= status.height()
        for button in window.buttons.values():
            assert button.height() >= button.minimumSizeHint().height(), f"{button.text()} is clipped"
        assert window.height() >= height  # made room (or kept the room the three-line "Model ready" made)

    qtbot.waitUntil(settled, timeout=3000)  # the window's resize lands some event-loop turns after the status's


def test_the_transcript_labels_the_built_in_prompt_as_the_preset(lumen, qtbot) -> None:  # noqa: ANN001
    from desktop.resources import question_for

    with qtbot.waitSignal(lumen.controller.answer_finished, timeout=5000):
        lumen.controller.handle_action("describe_screen")
    with qtbot.waitSignal(lumen.controller.answer_finished, timeout=5000):
        lumen.controller.ask("What does the button say?")
    lumen.controller.handle_action("recall")
    shown = lumen.transcript.text.toPlainText()
    assert "] Preset prompt: Detailed\n" in shown
    assert question_for(lumen.settings) not in shown and "You: Describe" not in shown
    assert "] You: What does the button say?\n" in shown  # what the user typed stays theirs
    assert lumen.controller.conversation.entries[0].turn.text == question_for(lumen.settings)  # sent as is
    lumen.transcript.close()


def test_a_taken_hotkey_is_spoken_with_its_action_and_the_setting_to_change(lumen, qtbot) -> None:  # noqa: ANN001
    with qtbot.waitSignal(lumen.controller.status) as status:
        lumen.hotkeys.taken.emit("Ctrl+Shift+F7", "describe_monitor")
    assert messages.HOTKEY_ACTIONS["describe_monitor"] in status.args[0] and "Settings, Hotkeys" in status.args[0]
    lumen.controller.keys.start_layer()
    with qtbot.waitSignal(lumen.controller.status) as status:
        lumen.hotkeys.modal_refused.emit("on Wayland the portal cannot lend single keys")
    assert "Wayland" in status.args[0] and not lumen.controller.keys.active


def test_the_language_model_engine_is_chosen_by_keyboard_and_reloads_the_model(lumen, qtbot) -> None:  # noqa: ANN001
    """Settings, Model, Alt+M then Alt+N: the engine choice; OK stores it and loads the model through it."""
    import dataclasses

    from desktop.settings import load
    from desktop.widgets.settings_dialog import SettingsDialog
    from engine.protocol import LoadModel

    dialog = SettingsDialog(lumen.settings, parent=lumen.window)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow, timeout=3000)
    assert dialog.backend.currentData() == "auto" and dialog.backend.accessibleName() == "Language model engine"
    assert "lumen --check" in dialog.backend.accessibleDescription()

    def press(key, modifier=Qt.KeyboardModifier.NoModifier) -> None:  # noqa: ANN001
        qtbot.keyClick(QApplication.focusWidget() or dialog, key, modifier)

    press(Qt.Key.Key_M, Qt.KeyboardModifier.AltModifier)  # the Model section
    press(Qt.Key.Key_N, Qt.KeyboardModifier.AltModifier)  # Language model engine
    assert dialog.backend.hasFocus()
    press(Qt.Key.Key_End)  # the last choice: llama.cpp
    assert dialog.backend.currentData() == "llamacpp"
    sent: list = []
    send = lumen.engine.send
    lumen.engine.send = lambda request: (sent.append(request), send(request))[1]
    lumen.apply_settings(dialog.settings())
    assert load(lumen.settings_path).settings.backend == "llamacpp"
    assert [r.backend for r in sent if isinstance(r, LoadModel)] == ["llamacpp"]
    lumen.apply_settings(dataclasses.replace(lumen.settings, rate=lumen.settings.rate + 10))
    assert [r.backend for r in sent if isinstance(r, LoadModel)] == ["llamacpp"]  # other settings: no reload
