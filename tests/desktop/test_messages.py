from desktop import messages
from engine.protocol import ErrorKind


def test_every_error_kind_has_a_message() -> None:
    for kind in ErrorKind:
        text = messages.error_text(kind)
        assert text and kind.value not in text  # words for people, not the enum


def test_progress_text() -> None:
    assert messages.progress_text("loading", 0.5).endswith("50 percent")
    assert messages.progress_text("encoding image", None) == messages.ENCODING_IMAGE
