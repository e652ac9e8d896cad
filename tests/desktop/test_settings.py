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


def test_a_version_1_file_is_migrated_and_the_old_file_kept(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    v1 = {"schema_version": 1, "speech_language": "de", "rate": 260, "hotkeys": {"voice": "Ctrl+Shift+F3"}}
    path.write_text(json.dumps(v1))
    result = st.load(path)
    assert result.migrated_from == 1 and result.message is None
    s = result.settings
    assert (s.schema_version, s.speech_model, s.speech_language, s.rate, s.hotkeys.voice) == (2, "", "de", 260, "Ctrl+Shift+F3")
    assert json.loads(path.read_text()) == v1  # load only reads
    kept = st.upgrade_file(result, path)
    assert kept == tmp_path / "settings.json.v1" and json.loads(kept.read_text()) == v1
    assert json.loads(path.read_text())["schema_version"] == 2 and json.loads(path.read_text())["speech_model"] == ""
    again = st.load(path)
    assert again.migrated_from is None and again.settings == s and st.upgrade_file(again, path) is None


def test_an_unversioned_file_counts_as_version_1(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"rate": 300}))
    result = st.load(path)
    assert result.migrated_from == 1 and result.settings.rate == 300 and result.settings.speech_model == ""


def test_speech_model_must_be_a_catalogue_speech_model(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"schema_version": 2, "speech_model": "whisper-small"}))
    assert st.load(path).settings.speech_model == "whisper-small"
    path.write_text(json.dumps({"schema_version": 2, "speech_model": "../../somewhere"}))
    result = st.load(path)
    assert result.settings.speech_model == "" and result.message  # reset, with the usual backup and message


def test_a_newer_file_is_not_migrated_backwards(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"schema_version": st.SCHEMA_VERSION + 1, "rate": 240, "future": True}))
    result = st.load(path)
    assert result.migrated_from is None and result.settings.rate == 240 and result.message == st.messages.SETTINGS_NEWER


def test_saved_precisions_still_load_as_the_engine_quantization(tmp_path: Path) -> None:
    """Settings files written before the wizard's precision and the engine's quantisation became one
    enum hold "none", "int8" or "nf4"; each still loads, unchanged, as the value the engine is sent."""
    from engine.protocol import LoadModel, Quantization

    path = tmp_path / "settings.json"
    for saved in ("none", "int8", "nf4"):
        path.write_text(json.dumps({"schema_version": 1, "quantization": saved}))
        result = st.load(path)
        assert result.settings.quantization == saved and result.message is None
        assert LoadModel("model", Quantization(result.settings.quantization)).quantization.value == saved


def test_the_model_choices_have_one_definition_and_a_label_each() -> None:
    """Precision and engine are engine.protocol's enums, the devices the settings' DEVICES; the dialog
    and the "Model ready" words only label them, each choice once, nothing else."""
    from desktop import messages
    from desktop.widgets import settings_dialog as dialog
    from engine.protocol import Backend, Quantization

    assert list(dialog.PRECISION_LABELS) == list(Quantization) and set(messages.MODEL_PRECISIONS) == set(Quantization)
    assert list(dialog.BACKEND_LABELS) == list(Backend)
    assert set(dialog.DEVICE_LABELS) == set(st.DEVICES)
    for name, choices in (("quantization", dialog._PRECISIONS), ("device", dialog._DEVICES), ("backend", dialog._BACKENDS)):
        assert [st.from_dict({name: value})[1] for value, _ in choices] == [[]] * len(choices)  # the settings accept each


def test_the_dialog_shows_and_returns_the_model_choices(qtbot) -> None:  # noqa: ANN001
    from desktop.widgets.settings_dialog import SettingsDialog

    chosen = dataclasses.replace(Settings(), quantization="nf4", device="mps", backend="llamacpp")
    dialog = SettingsDialog(chosen)
    qtbot.addWidget(dialog)
    assert (dialog.precision.currentText(), dialog.device.currentText(), dialog.backend.currentText()) == (
        "4-bit (least memory)", "Apple GPU", "llama.cpp (GGUF file)")
    assert [dialog.precision.itemText(i) for i in range(dialog.precision.count())] == [
        "Full (16-bit on a GPU)", "8-bit", "4-bit (least memory)"]
    assert [dialog.device.itemText(i) for i in range(dialog.device.count())] == [
        "Automatic", "GPU (CUDA)", "Processor (slow)", "Apple GPU"]
    result = dialog.settings()
    assert (result.quantization, result.device, result.backend) == ("nf4", "mps", "llamacpp")
    assert json.loads(st.to_json(result))["backend"] == "llamacpp"
