"""Run the real Lumen app (scripted engine, recorded own voice) for the screen-reader tests.

argv: <workdir> <speech output setting> [stop]. Builds the app exactly as ``lumen`` does (real
speech-output layer and reader detection), presses the describe hotkey's action (the window is
never focused: another application has focus), waits for the answer, and writes what the own
voice said to <workdir>/voice.json. With "stop", Stop is pressed the moment the whole answer has
been given out (the reader has queued it and is still saying the first sentences). With "ask",
the question hotkey's action follows the answer and the question is typed with xdotool (real key
events) into Lumen's question field, then Enter; the second answer ends the run. Starts when <workdir>/go exists (the test's reader is ready).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from desktop import app  # noqa: E402
from desktop.engine_client import thread_launcher  # noqa: E402
from desktop.settings import SpeechOutput  # noqa: E402
from tests.fakes import FakeCapture, RecordingEarcons, RecordingSpeaker, ScriptedEngine  # noqa: E402

QUESTION = "What does the button say?"


def main() -> None:
    work, mode = Path(sys.argv[1]), SpeechOutput(sys.argv[2])
    stop, ask = sys.argv[3:4] == ["stop"], sys.argv[3:4] == ["ask"]
    qt = QApplication(sys.argv[:1])
    qt.setApplicationName("lumen-reader-test")
    engine = ScriptedEngine(answer="A window with a button. The button says OK. Nothing else is visible. "
                                   "The taskbar is at the bottom. A clock shows noon.", delay=0.02)
    speaker = RecordingSpeaker()
    lumen = app.build(work / "settings.json", launcher=thread_launcher(engine.serve), speaker=speaker,
                      earcons=RecordingEarcons())
    lumen.controller.grabber = FakeCapture()
    lumen.controller.settings = dataclasses.replace(lumen.settings, speech_output=mode)
    app.start(lumen, hotkeys=False, first_run_setup=False)
    lumen.window.showMinimized()  # not focused: the hotkey is pressed while working elsewhere
    state: dict = {"stopped": False, "asked": False}

    def finish(_text: str = "") -> None:
        (work / "voice.json").write_text(json.dumps(speaker.texts))
        QTimer.singleShot(300, qt.quit)

    def type_question() -> None:  # real X key events into whatever has the keyboard focus
        # Not waited for here: Qt must keep serving the AT-SPI key-event round trips with Orca meanwhile.
        state["typist"] = subprocess.Popen(["sh", "-c", f"xdotool type --delay 80 '{QUESTION}' && sleep 1 && "
                                                        "xdotool key Return"])

    def on_finished(_text: str) -> None:
        if stop and not state["stopped"]:
            state["stopped"] = True
            lumen.controller.handle_action("stop")  # every sentence is with the reader, most still unsaid
        if ask and not state["asked"]:
            state["asked"] = True
            lumen.controller.handle_action("ask")  # the question hotkey: Lumen's question field takes focus
            QTimer.singleShot(1500, type_question)
            return
        QTimer.singleShot(1500, finish)

    def go() -> None:
        if not (work / "go").exists():
            QTimer.singleShot(100, go)
            return
        lumen.controller.answer_finished.connect(on_finished)
        lumen.controller.handle_action("describe_screen")

    QTimer.singleShot(100, go)
    QTimer.singleShot(60000, finish)  # never hang the test
    qt.exec()
    lumen.engine.shutdown()


if __name__ == "__main__":
    main()
