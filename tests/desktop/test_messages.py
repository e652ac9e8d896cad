from desktop import messages
from engine.protocol import ErrorKind


def test_every_error_kind_has_a_message() -> None:
    for kind in ErrorKind:
        text = messages.error_text(kind)
        assert text and kind.value not in text  # words for people, not the enum


def test_a_missing_gguf_file_says_how_to_convert_it_or_leave_llama_cpp() -> None:
    text = messages.error_text(ErrorKind.MODEL_MISSING, "gguf/llm-q4_k_m.gguf")
    assert "lumen models gguf" in text and "Language model engine" in text
    assert "llm/config.json" in messages.error_text(ErrorKind.MODEL_MISSING, "llm/config.json")


def test_progress_text() -> None:
    assert messages.progress_text("loading", 0.5).endswith("50 percent")
    assert messages.progress_text("encoding image", None) == messages.ENCODING_IMAGE
