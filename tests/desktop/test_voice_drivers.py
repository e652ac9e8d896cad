"""The own voice's Windows and macOS drivers against recorded fakes at the native boundary (comtypes'
SAPI objects, pyobjc's AVFoundation classes): they cannot run here. Asserted: the exact calls
(audio format, rate mapping, voice selection, nothing naming a file), and that the PCM they collect
reaches the real player (QAudioSink on the session's null output)."""

from __future__ import annotations

import array
import math
import threading
from types import SimpleNamespace

import pytest

from desktop.speech_output.speaker import VoiceOptions
from desktop.speech_output import voice_drivers
from desktop.speech_output.voice import Synthesizer, VoiceSpeaker
from desktop.speech_output.voice_drivers import AVSpeechVoice, Pcm, SapiVoice

pytestmark = pytest.mark.display
PCM16 = array.array("h", [int(8000 * math.sin(i / 5)) for i in range(22050)]).tobytes()  # 1 s at 22 kHz


@pytest.fixture(autouse=True)
def _sound_output(null_audio) -> None:  # noqa: ANN001
    if null_audio is None:
        pytest.skip("needs pulseaudio for a sound output (apt-get install pulseaudio)")


# ------------------------------------------------------------------ SAPI5 (comtypes)
class Recorder:
    """A COM object's stand-in: records every property set and method called, in order."""

    def __init__(self, log: list, name: str, **attrs) -> None:  # noqa: ANN003
        object.__setattr__(self, "_log", log)
        object.__setattr__(self, "_name", name)
        for key, value in attrs.items():
            object.__setattr__(self, key, value)

    def __setattr__(self, key: str, value) -> None:  # noqa: ANN001
        self._log.append((self._name, key, value))
        object.__setattr__(self, key, value)


class FakeSapi:
    def __init__(self) -> None:
        self.log: list = []
        self.tokens = [Recorder(self.log, "token", Id=r"HKEY_LOCAL_MACHINE\...\Tokens\MSDavid",
                                GetDescription=lambda: "Microsoft David"),
                       Recorder(self.log, "token", Id=r"HKEY_LOCAL_MACHINE\...\Tokens\MSZira",
                                GetDescription=lambda: "Microsoft Zira")]
        self.threads: list[str] = []

    def create(self, progid: str):  # noqa: ANN201 - comtypes.client.CreateObject
        self.log.append(("create", progid))
        self.threads.append(threading.current_thread().name)
        if progid == "SAPI.SpVoice":
            voice = Recorder(self.log, "voice", Voice=self.tokens[0], Rate=0, Volume=100)
            tokens = SimpleNamespace(Count=len(self.tokens), Item=lambda i: self.tokens[i])
            object.__setattr__(voice, "GetVoices", lambda: tokens)

            def speak(text: str, flags: int) -> int:
                self.log.append(("voice", "Speak", text, flags))
                stream = voice.AudioOutputStream
                assert stream.Format.Type == voice_drivers.SAFT22kHz16BitMono  # format fixed before speaking
                object.__setattr__(stream, "data", PCM16)
                return 1

            object.__setattr__(voice, "Speak", speak)
            return voice
        if progid == "SAPI.SpMemoryStream":
            stream = Recorder(self.log, "stream", data=b"")
            object.__setattr__(stream, "GetData", lambda: tuple(stream.data))  # a SAFEARRAY of bytes
            return stream
        if progid == "SAPI.SpAudioFormat":
            return Recorder(self.log, "format", Type=0)
        raise AssertionError(f"unexpected COM object {progid}")


def test_sapi_speaks_into_a_memory_stream_of_a_fixed_format_at_the_mapped_rate() -> None:
    sapi = FakeSapi()
    driver = SapiVoice(create=sapi.create, co_initialize=lambda: sapi.log.append(("CoInitialize",)))
    assert driver.voices() == [(t.Id, t.GetDescription()) for t in sapi.tokens]
    sapi.log.clear()
    pcm = driver.render("Is 3 < 4? Yes.", sapi.tokens[1].Id, 200)
    assert pcm == Pcm(PCM16, 22050, 1, "int16")
    calls = [c for c in sapi.log if c[0] != "token"]
    stream = next(c for c in calls if c[:2] == ("voice", "AudioOutputStream"))[2]
    assert calls == [
        ("voice", "Voice", sapi.tokens[1]),
        ("voice", "Rate", 2),  # 200 wpm on pyttsx3's curve 156.63 * 1.11 ** Rate
        ("create", "SAPI.SpMemoryStream"),
        ("stream", "Format", driver._format),
        ("voice", "AudioOutputStream", stream),
        ("voice", "Speak", "Is 3 < 4? Yes.", voice_drivers.SVSFIsNotXML),  # plain text, synchronous
    ]
    assert driver._format.Type == 22  # SAFT22kHz16BitMono
    driver.render("Hello.", "no-such-voice", 450)
    assert ("voice", "Voice", sapi.tokens[0]) in sapi.log and ("voice", "Rate", 10) in sapi.log  # default voice
    assert [voice_drivers.sapi_rate(w) for w in (80, 157, 450)] == [-6, 0, 10]
    everything = repr(sapi.log)
    assert "SpFileStream" not in everything and ".wav" not in everything.lower()  # nothing names a file


def test_sapi_runs_in_the_synthesis_thread_and_its_pcm_reaches_the_player(qtbot) -> None:  # noqa: ANN001
    sapi = FakeSapi()
    synth = Synthesizer(lambda: SapiVoice(create=sapi.create, co_initialize=lambda: None))
    speaker = VoiceSpeaker(VoiceOptions(rate=200, volume=0.5), synthesizer=synth)
    try:
        with qtbot.waitSignal(speaker.started, timeout=10000) as started:
            speaker.say("Model ready.")
        assert started.args == ["Model ready."]
        assert set(sapi.threads) == {"lumen-tts"}  # COM objects made in the thread that uses them
        assert bytes(speaker._buffer.data()) == PCM16 and speaker._sink.format().sampleRate() == 22050
        with qtbot.waitSignal(speaker.idle, timeout=10000):
            pass  # played to its end (1 s)
    finally:
        speaker.close()


# ------------------------------------------------------------------ AVSpeechSynthesizer (pyobjc)
FLOATS = array.array("f", [0.25 * math.sin(i / 7) for i in range(4410)])  # 0.1 s at 44.1 kHz per buffer


class FakeVarList:
    """pyobjc's ``objc.varlist`` for a C array: ``as_buffer(count)`` is a memoryview of its items."""

    def __init__(self, items: array.array) -> None:
        self.items = items

    def as_buffer(self, count: int) -> memoryview:
        return memoryview(self.items)[:count]


class FakeBuffer:
    def __init__(self, frames: int, common: int = voice_drivers.AVAudioPCMFormatFloat32) -> None:
        self.frames, self.common = frames, common

    def frameLength(self) -> int:  # noqa: N802
        return self.frames

    def format(self):  # noqa: ANN201
        return SimpleNamespace(commonFormat=lambda: self.common, sampleRate=lambda: 44100.0)

    def floatChannelData(self) -> list:  # noqa: N802
        return [FakeVarList(FLOATS)]


class FakeAVFoundation:
    AVSpeechUtteranceDefaultSpeechRate = 0.5
    AVSpeechUtteranceMinimumSpeechRate = 0.0
    AVSpeechUtteranceMaximumSpeechRate = 1.0

    def __init__(self, deliver_on: str = "main") -> None:
        self.log: list = []
        self.deliver_on = deliver_on
        self.go = threading.Event()  # background delivery waits for it
        av = self
        voices = [SimpleNamespace(identifier=lambda: "com.apple.voice.compact.en-US.Samantha", name=lambda: "Samantha"),
                  SimpleNamespace(identifier=lambda: "com.apple.voice.compact.en-GB.Daniel", name=lambda: "Daniel")]

        class Utterance:
            def __init__(self, text: str) -> None:
                self.text, self.rate, self.voice = text, None, None

            def setRate_(self, rate: float) -> None:  # noqa: N802
                self.rate = rate

            def setVoice_(self, voice) -> None:  # noqa: ANN001, N802
                self.voice = voice

        class Synth:
            def writeUtterance_toBufferCallback_(self, utterance, callback) -> None:  # noqa: ANN001, N802
                av.log.append(("write", utterance.text, utterance.rate,
                               utterance.voice.identifier() if utterance.voice else None,
                               threading.current_thread() is threading.main_thread()))

                def deliver() -> None:
                    av.go.wait(5)
                    for _ in range(3):
                        callback(FakeBuffer(len(FLOATS)))
                    callback(FakeBuffer(0))  # the end of the utterance

                if av.deliver_on == "main":
                    av.go.set()
                    deliver()
                else:  # AVFoundation's own queue
                    threading.Thread(target=deliver).start()

            def stopSpeakingAtBoundary_(self, boundary: int) -> None:  # noqa: N802
                av.log.append(("stop", boundary))

        self.AVSpeechSynthesizer = SimpleNamespace(alloc=lambda: SimpleNamespace(init=lambda: Synth()))
        self.AVSpeechUtterance = SimpleNamespace(speechUtteranceWithString_=Utterance)
        self.AVSpeechSynthesisVoice = SimpleNamespace(
            speechVoices=lambda: voices,
            voiceWithIdentifier_=lambda ident: next((v for v in voices if v.identifier() == ident), None))


class FakeMainQueue:
    def __init__(self) -> None:
        self.blocks: list = []

    def addOperationWithBlock_(self, block) -> None:  # noqa: ANN001, N802
        self.blocks.append(block)


def test_avspeech_collects_the_buffers_on_the_main_thread_with_voice_and_rate() -> None:
    av = FakeAVFoundation()
    driver = AVSpeechVoice(av, FakeMainQueue())
    assert driver.voices() == [("com.apple.voice.compact.en-US.Samantha", "Samantha"),
                               ("com.apple.voice.compact.en-GB.Daniel", "Daniel")]
    pcm = driver.render("Model ready.", "com.apple.voice.compact.en-GB.Daniel", 300).result(0)
    assert pcm == Pcm(FLOATS.tobytes() * 3, 44100, 1, "float32")
    assert av.log == [("write", "Model ready.", 0.75, "com.apple.voice.compact.en-GB.Daniel", True)]
    driver.render("Hello.", "no-such-voice", 450).result(0)
    assert av.log[-1] == ("write", "Hello.", 1.0, None, True)  # the default voice; the rate clamped
    assert voice_drivers.avspeech_rate(80, av) == pytest.approx(0.2)
    with pytest.raises(RuntimeError, match="main thread"):  # never from a worker thread
        result: list = []
        worker = threading.Thread(target=lambda: result.append(_capture(lambda: driver.render("x"))))
        worker.start()
        worker.join()
        raise result[0]


def _capture(fn):  # noqa: ANN001, ANN202
    try:
        fn()
    except Exception as exc:  # noqa: BLE001
        return exc
    return AssertionError("no error")


def test_avspeech_starts_the_next_utterance_on_the_main_thread_when_buffers_come_from_elsewhere() -> None:
    av, main = FakeAVFoundation(deliver_on="background"), FakeMainQueue()
    driver = AVSpeechVoice(av, main)
    first, second = driver.render("One."), driver.render("Two.")  # one utterance at a time
    av.go.set()
    first.result(5)
    threading.Event().wait(0.2)  # the background thread hands the next one over
    assert [entry[1] for entry in av.log] == ["One."] and not second.done()
    assert len(main.blocks) == 1  # handed to the main queue, not started on AVFoundation's thread
    main.blocks.pop()()
    assert second.result(5).sample_rate == 44100
    assert av.log[1][1:] == ("Two.", 0.5, None, True)


def test_avspeech_pcm_reaches_the_player(qtbot) -> None:  # noqa: ANN001
    from PySide6.QtMultimedia import QAudioFormat

    speaker = VoiceSpeaker(VoiceOptions(), synthesizer=AVSpeechVoice(FakeAVFoundation(), FakeMainQueue()))
    try:
        with qtbot.waitSignal(speaker.started, timeout=10000):
            speaker.say("Describing screen.")
        assert bytes(speaker._buffer.data()) == FLOATS.tobytes() * 3
        assert speaker._sink.format().sampleFormat() == QAudioFormat.SampleFormat.Float
        with qtbot.waitSignal(speaker.idle, timeout=10000):
            pass
    finally:
        speaker.close()


def test_each_os_gets_its_driver(monkeypatch) -> None:  # noqa: ANN001
    from desktop.speech_output import voice
    from desktop.speech_output.voice_drivers import EspeakVoice

    made = []
    monkeypatch.setattr(voice, "AVSpeechVoice", lambda: made.append("avspeech") or "main-thread synthesizer")
    monkeypatch.setattr(voice.sys, "platform", "darwin")
    assert voice.make_synthesizer() == "main-thread synthesizer" and made == ["avspeech"]
    for platform, driver in (("win32", SapiVoice), ("linux", EspeakVoice)):
        monkeypatch.setattr(voice.sys, "platform", platform)
        synth = voice.make_synthesizer()
        try:
            assert synth._factory is driver
        finally:
            synth.close()
    assert "SAPI5" in voice_drivers.driver_name("win32") and "espeak-ng" in voice_drivers.driver_name("linux")
    assert "AVSpeechSynthesizer" in voice_drivers.driver_name("darwin")


def test_check_and_settings_name_the_own_voice_driver(qtbot) -> None:  # noqa: ANN001
    from desktop.check import check_speech
    from desktop.settings import Settings
    from desktop.widgets.settings_dialog import SettingsDialog

    name = voice_drivers.driver_name()
    assert name == "espeak-ng (in memory)"  # this machine is Linux
    assert check_speech(outputs=lambda: ["Speakers"]).detail == f"own voice: {name}; sound output: Speakers"
    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    assert name in dialog.voice.accessibleDescription()
