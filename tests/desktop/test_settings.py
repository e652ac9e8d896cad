import dataclasses
import json
from pathlib import Path

from desktop import settings as st
from desktop.settings import Hotkeys, PromptPreset, Settings, SpeechOutput


def test_round_trip_and_version(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    custom = dataclasses.replace(
        Settings(), prompt_preset=PromptPreset.CUSTOM, custom_prompt="What colour is it?",
        speech_output=SpeechOutput.VOICE, rate=260, hotkeys=Hotkeys(stop="Ctrl+Shift+F4"),
    )
    st.save(custom, path)
    assert json.loads(path.read_text())["schema_version"] == st.SCHEMA_VERSION
    result = st.load(path)
    assert result.settings == custom and result.message is None and result.backup is None


def test_missing_file_gives_defaults_silently(tmp_path: Path) -> None:
    result = st.load(tmp_path / "nope.json")
    assert result.settings == Settings() and result.message is None


def test_corrupt_file_is_backed_up_and_replaced_by_defaults_with_a_message(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"rate": 300, "voice": ', encoding="utf-8")  # truncated write
    result = st.load(path)
    assert result.settings == Settings()
    assert result.backup is not None and result.backup.read_text() == '{"rate": 300, "voice": '
    assert not path.exists()
    assert str(result.backup) in result.message and "defaults" in result.message


def test_invalid_fields_fall_back_individually(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({
        "schema_version": 1, "rate": 9999, "volume": "loud", "earcons": False,
        "speech_output": "telepathy", "quantization": "nf4", "hotkeys": {"stop": "Ctrl+Shift+F3", "bogus": 1},
    }))
    result = st.load(path)
    s = result.settings
    assert (s.rate, s.volume, s.speech_output) == (200, 1.0, SpeechOutput.AUTO)  # reset
    assert (s.earcons, s.quantization, s.hotkeys.stop) == (False, "nf4", "Ctrl+Shift+F3")  # kept
    assert result.message and result.backup and result.backup.exists() and path.exists()


def test_binary_garbage_is_corrupt_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert st.load(path).settings == Settings()
    path.write_text("[1, 2]")
    assert st.load(path).message


def test_spoken_question_language_is_validated(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"schema_version": 1, "speech_language": "de"}))
    assert st.load(path).settings.speech_language == "de"
    path.write_text(json.dumps({"schema_version": 1, "speech_language": "klingon"}))
    assert st.load(path).settings.speech_language == "en"
