"""Real speech: espeak-ng renders into memory in its own thread, QAudioSink plays and stops it
(through the session's private PulseAudio null output, tests/desktop/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from desktop.speech_output.speaker import Priority, VoiceOptions
from desktop.speech_output.voice import SpeechQueue, Synthesizer, VoiceSpeaker

pytestmark = pytest.mark.display
ROOT = Path(__file__).resolve().parents[2]
ANSWER = "The screen shows a text editor with a letter to the bank. A save dialog is open in front of it."


@pytest.fixture(autouse=True)
def _sound_output(null_audio) -> None:  # noqa: ANN001
    if null_audio is None:
        pytest.skip("needs pulseaudio for a sound output (apt-get install pulseaudio)")


def test_priority_queue_now_next_normal() -> None:
    q = SpeechQueue()
    assert not q.push("a", Priority.NORMAL) and not q.push("b", Priority.NORMAL)
    assert not q.push("urgent-ish", Priority.NEXT)
    assert [q.pop(), q.pop(), q.pop(), q.pop()] == ["urgent-ish", "a", "b", None]
    q.push("a", Priority.NORMAL)
    assert q.push("stop everything", Priority.NOW)  # interrupts and clears
    assert [q.pop(), q.pop()] == ["stop everything", None]


@pytest.fixture(scope="module")
def synth():
    s = Synthesizer()
    yield s
    s.close()


@pytest.fixture
def speakers(qtbot, synth):  # noqa: ANN001
    """VoiceSpeakers on the shared synthesizer, silenced and deleted before the next test runs."""
    made: list[VoiceSpeaker] = []

    def make(options: VoiceOptions) -> VoiceSpeaker:
        speaker = VoiceSpeaker(options, synthesizer=synth)
        made.append(speaker)
        return speaker

    yield make
    for speaker in made:
        speaker.stop()
        speaker.deleteLater()
    qtbot.wait(50)


def samples(pcm) -> np.ndarray:  # noqa: ANN001
    assert pcm.sample_format == "int16" and pcm.channels == 1
    return np.frombuffer(pcm.data, "<i2").astype(np.float32) / 32768


def test_espeak_renders_real_speech_in_memory_at_the_exact_rate(synth) -> None:  # noqa: ANN001
    for _ in range(3):  # every render, not just a lucky one
        pcm = synth.render(ANSWER, "", 175).result(30)
        data = samples(pcm)
        rms = float(np.sqrt(np.mean(data**2)))
        assert 3.0 < pcm.seconds < 20.0, pcm.seconds
        assert rms > 0.02 and np.abs(data).max() > 0.2, rms
    slow, fast = (synth.render(ANSWER, "", rate).result(30).seconds for rate in (200, 400))
    assert 0.4 < fast / slow < 0.6, (slow, fast)  # the synthesizer's own rate: twice the words per minute
    voices = dict(synth.voices())
    assert "gmw/en-us" in voices, "espeak-ng lists its voices, by the ids Settings stores"
    assert synth.render("Hello.", "gmw/en-us", 200).result(30).seconds > 0.2
    assert synth.render("Hello.", "no-such-voice", 200).result(30).seconds > 0.2  # the default speaks instead


def test_volume_applies_at_playback_at_once(qtbot, speakers) -> None:  # noqa: ANN001
    speaker = speakers(VoiceOptions(volume=0.3))
    with qtbot.waitSignal(speaker.started, timeout=10000):
        speaker.say(ANSWER)
    assert abs(speaker._sink.volume() - 0.3) < 0.01
    speaker.set_options(VoiceOptions(volume=0.8))
    assert abs(speaker._sink.volume() - 0.8) < 0.01


def test_stop_interrupts_playback_within_200_ms(qtbot, speakers) -> None:  # noqa: ANN001
    from PySide6.QtMultimedia import QtAudio as QAudio

    speaker = speakers(VoiceOptions(rate=170))
    started: list[str] = []
    speaker.started.connect(started.append)
    speaker.say(ANSWER)
    speaker.say("This second sentence must never be heard.")
    qtbot.waitUntil(lambda: started == [ANSWER], timeout=10000)
    qtbot.wait(400)  # mid-sentence (the sentence lasts several seconds)
    assert speaker._sink.state() == QAudio.State.ActiveState
    t0 = time.monotonic()
    speaker.stop()
    assert speaker._sink.state() == QAudio.State.StoppedState
    assert time.monotonic() - t0 < 0.2
    assert not speaker.speaking
    qtbot.wait(500)
    assert started == [ANSWER]  # the queued sentence was dropped


def test_sentences_play_in_order_and_now_interrupts(qtbot, speakers, synth) -> None:  # noqa: ANN001
    speaker = speakers(VoiceOptions(rate=300))
    started: list[tuple[str, float]] = []
    speaker.started.connect(lambda text: started.append((text, time.monotonic())))
    speaker.say("One.")
    speaker.say("Two.")
    qtbot.waitUntil(lambda: [t for t, _ in started] == ["One.", "Two."], timeout=10000)
    with qtbot.waitSignal(speaker.idle, timeout=10000):
        pass
    long = "A long sentence that will be cut off by something more urgent, like a new request. " * 2
    seconds = synth.render(long.strip(), "", 300).result(30).seconds
    assert seconds > 5
    speaker.say(long)
    qtbot.waitUntil(lambda: len(started) == 3, timeout=10000)
    qtbot.wait(300)
    said_now = time.monotonic()
    speaker.say("Describing screen", Priority.NOW)
    qtbot.waitUntil(lambda: started[-1][0] == "Describing screen", timeout=10000)
    # The long sentence was cut off: the urgent one began long before the long one could have ended.
    assert started[-1][1] - said_now < 1.0 and started[-1][1] - started[2][1] < seconds - 3, (started, seconds)


STRESS = r'''
import os, random, sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from desktop.speech_output.speaker import Priority, VoiceOptions
from desktop.speech_output.voice import VoiceSpeaker

app = QApplication([])
speaker = VoiceSpeaker(VoiceOptions(rate=300))
random.seed(int(sys.argv[1]))
count = {"n": 0, "started": 0}
speaker.started.connect(lambda text: count.__setitem__("started", count["started"] + 1))

def cycle():
    count["n"] += 1
    if count["n"] > 300:
        speaker.close()
        print("survived", count["started"], flush=True)
        os._exit(0)  # only the no-hang property is under test here, not interpreter teardown
    r = random.random()
    if r < 0.4:
        speaker.stop()
    elif r < 0.6:
        speaker.say(f"And then a sentence {count['n']} in the queue.")
    speaker.say(f"Sentence number {count['n']} is being read aloud now.", Priority.NOW)
    QTimer.singleShot(random.choice([0, 1, 5, 20, 60, 150, 400]), cycle)

QTimer.singleShot(0, cycle)
app.exec()
'''


def run_stress(tmp_path: Path, root: Path, seed: int, timeout: float = 120) -> subprocess.CompletedProcess:
    script = tmp_path / "stress.py"
    script.write_text(STRESS)
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, str(script), str(seed)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=root)


@pytest.mark.system
@pytest.mark.parametrize("seed", [1, 2])
def test_hundreds_of_say_now_stop_cycles_never_hang_the_gui(tmp_path, seed: int) -> None:
    """Regression: QMediaPlayer.stop() on a playing file deadlocked in Qt's FFmpeg plugin about one
    run in ten. 300 say/NOW/stop cycles through the real sound path (this display, the session's
    null output), in a subprocess so that a hang fails this test instead of freezing the suite."""
    result = run_stress(tmp_path, ROOT, seed)
    assert result.returncode == 0 and "survived" in result.stdout, result.stderr[-2000:]
    assert int(result.stdout.split()[-1]) >= 30, result.stdout  # audio really started, many times


SPEAK_AND_WATCH = r'''
import ctypes, os, struct, sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from desktop.speech_output.speaker import VoiceOptions
from desktop.speech_output.voice import VoiceSpeaker

libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(os.O_NONBLOCK)
IN_CREATE, IN_MOVED_TO = 0x100, 0x80
watched = {libc.inotify_add_watch(fd, d.encode(), IN_CREATE | IN_MOVED_TO): d for d in sys.argv[1:]}
app = QApplication([])
speaker = VoiceSpeaker(VoiceOptions(rate=400))
said = []
speaker.started.connect(said.append)
for text in ("Model ready.", "The screen shows a text editor.", "A save dialog is open."):
    speaker.say(text)
speaker.idle.connect(lambda: app.quit() if len(said) == 3 else None)
QTimer.singleShot(30000, app.quit)
app.exec()
speaker.close()
created = []
try:
    data = os.read(fd, 65536)
except BlockingIOError:
    data = b""
while data:
    wd, mask, cookie, size = struct.unpack_from("iIII", data)
    name = data[16:16 + size].rstrip(b"\0").decode()
    created.append(os.path.join(watched[wd], name))
    data = data[16 + size:]
print("said", len(said), "created", created, flush=True)
os._exit(0)
'''


@pytest.mark.system
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify")
def test_speaking_creates_no_file(tmp_path) -> None:
    """Privacy: the answer's audio never reaches a file, not even for a moment (inotify sees a file
    created and deleted at once); TMPDIR is a folder of this test's own, /dev/shm is watched too."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    script = tmp_path / "speak.py"
    script.write_text(SPEAK_AND_WATCH)
    folders = [str(tmp)] + (["/dev/shm"] if os.path.isdir("/dev/shm") else [])
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, str(script), *folders], capture_output=True, text=True, timeout=120,
                            env=env, cwd=ROOT)
    assert "said 3 created []" in result.stdout, (result.stdout, result.stderr[-2000:])


def test_the_synthesis_library_is_loaded_before_its_thread_starts() -> None:
    """Regression: the synthesis thread resolved libespeak's symbols (holding the GIL) while the GUI
    thread dlopened QtMultimedia, whose log line went to a Python message handler: a deadlock at
    start-up (py-spy, pytest-qt). The library is loaded in the thread that makes the synthesizer."""
    code = ("import sys\nfrom desktop.speech_output.voice import Synthesizer\ns = Synthesizer()\n"
            "print('pyttsx3.drivers._espeak' in sys.modules)\ns.close()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.stdout.strip() == "True", out.stderr[-2000:]


NO_OUTPUT = r'''
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from desktop.speech_output.voice import VoiceSpeaker

app = QApplication([])
speaker = VoiceSpeaker()
events = []
speaker.started.connect(lambda text: events.append("started"))
speaker.idle.connect(lambda: (events.append("idle"), app.quit() if events.count("idle") == 2 else None))
speaker.say("Model ready.")
speaker.say("The next sentence.")
QTimer.singleShot(200, lambda: speaker.say("A later request."))
QTimer.singleShot(20000, app.quit)
app.exec()
print(events, speaker.speaking, flush=True)
speaker.close()
'''


@pytest.mark.system
def test_without_a_sound_output_speech_fails_quietly_and_the_next_request_still_runs(tmp_path) -> None:
    env = {**os.environ, "PULSE_SERVER": f"unix:{tmp_path}/no-such-server", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", NO_OUTPUT], capture_output=True, text=True, timeout=60, env=env,
                            cwd=ROOT)
    if Path("/dev/snd").exists():
        pytest.skip("a real sound card answers without the server")
    assert result.stdout.strip() == "['idle', 'idle'] False", (result.stdout, result.stderr[-2000:])
