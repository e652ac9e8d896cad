"""Screen text on the desktop side: the "read the text" command and OCR grounding of answers.

OCR itself runs in the engine process (``ReadText`` -> ``TextRead``). This module is the GUI
thread's bookkeeping around it, free of widgets so the controller can wire it as it likes:

* ``reading_chunks(lines)``: what to speak for "read the text", in reading order, one row per
  utterance (items of a row joined by a comma pause), long rows cut at sentence ends then words.
* ``ScreenText``: remembers the OCR lines of each image of the conversation, tracks which
  ``ReadText`` request was for what, holds the grounding switch (settings ``ocr``), and gives the
  ``context`` for a question (``AssistantController.ask(question, context)``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from desktop import messages
from engine.perception.reading_order import format_grounding, rows
from engine.protocol import TextLine, TextRead

log = logging.getLogger(__name__)

READ_CHUNK_CHARS = 200  # about 12 s of speech at a typical rate: small enough to interrupt quickly
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def reading_chunks(lines: Sequence[TextLine], max_chars: int = READ_CHUNK_CHARS) -> list[str]:
    """Utterances for "read the text", in reading order (``lines`` as ``engine.perception.ocr.read_text`` gives them)."""
    chunks: list[str] = []
    for row in rows(lines):
        text = ", ".join(" ".join(line.text.split()) for line in row if line.text.strip())
        if text:
            chunks.extend(_cut(text, max_chars))
    return chunks


def _cut(text: str, max_chars: int) -> list[str]:
    if len(text) <= max_chars:
        return [text]
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        while len(sentence) > max_chars:
            cut = sentence.rfind(" ", 0, max_chars + 1)
            cut = cut if cut > 0 else max_chars
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if pieces and len(pieces[-1]) + 1 + len(sentence) <= max_chars:
            pieces[-1] = f"{pieces[-1]} {sentence}"
        elif sentence:
            pieces.append(sentence)
    return pieces


def reading_summary(lines: Sequence[TextLine]) -> str:
    """Said before the text itself: how much there is, or that there is none."""
    count = len(rows(lines))
    if count == 0:
        return messages.tr(messages.SCREEN_TEXT_NONE)
    if count == 1:
        return messages.tr(messages.SCREEN_TEXT_ONE_LINE)
    return messages.tr(messages.SCREEN_TEXT_LINES).format(count=count)


class Purpose(StrEnum):
    READ = "read"  # speak it ("read the text")
    GROUND = "ground"  # keep it for the next question's context


@dataclass(frozen=True)
class TextResult:
    image_id: str
    purpose: Purpose
    lines: tuple[TextLine, ...]


class ScreenText:
    """OCR results of the conversation's images and the grounding switch. GUI thread only."""

    def __init__(self, grounding: bool = True) -> None:
        self.grounding = grounding
        self._lines: dict[str, tuple[TextLine, ...]] = {}
        self._pending: dict[int, tuple[str, Purpose]] = {}

    # ------------------------------------------------------------ the switch
    def toggle_grounding(self) -> str:
        """Flip grounding; returns what to tell the user (the caller persists ``grounding``)."""
        self.grounding = not self.grounding
        return messages.tr(messages.GROUNDING_ON if self.grounding else messages.GROUNDING_OFF)

    # ------------------------------------------------------------ requests and results
    def needs_ocr(self, image_id: str) -> bool:
        """Whether to send ``ReadText`` for a new image before asking about it."""
        return self.grounding and image_id not in self._lines and not self._is_pending(image_id)

    def requested(self, request_id: int, image_id: str, purpose: Purpose) -> None:
        self._pending[request_id] = (image_id, Purpose(purpose))

    def on_text_read(self, event: TextRead) -> TextResult | None:
        """Store a ``TextRead``; None when it answers no request of ours (e.g. after ``forget``) or
        was cancelled."""
        found = self._pending.pop(event.request_id, None)
        if found is None or event.cancelled:
            return None
        image_id, purpose = found
        self._lines[image_id] = tuple(event.lines)
        log.debug("OCR of %s: %d lines in %.2f s", image_id, len(event.lines), event.seconds)
        return TextResult(image_id, purpose, tuple(event.lines))

    def on_failed(self, request_id: int | None) -> TextResult | None:
        """A ``Failed`` for one of our requests: forget it (asking goes on without grounding)."""
        found = self._pending.pop(request_id, None) if request_id is not None else None
        return TextResult(found[0], found[1], ()) if found else None

    def lines_for(self, image_id: str) -> tuple[TextLine, ...] | None:
        return self._lines.get(image_id)

    def cancel_pending(self, purposes: Sequence[Purpose] | None = None) -> list[int]:
        """Give up the pending requests (of ``purposes``; None: all); returns their ids to cancel."""
        ids = [rid for rid, (_, purpose) in self._pending.items() if purposes is None or purpose in purposes]
        for rid in ids:
            del self._pending[rid]
        return ids

    def forget(self) -> list[int]:
        """A new conversation: drop every stored text; returns the pending requests' ids to cancel."""
        self._lines.clear()
        return self.cancel_pending()

    # ------------------------------------------------------------ grounding
    def context_for(self, image_ids: Sequence[str]) -> str:
        """``Describe.context`` for a question about the conversation whose images are ``image_ids``
        (oldest first): the OCR text of the most recent image that has been read, or "" when
        grounding is off or no text is known. Follow-ups get it again, since each question is
        rendered with its own context."""
        if not self.grounding:
            return ""
        for image_id in reversed(image_ids):
            lines = self._lines.get(image_id)
            if lines is not None:
                return format_grounding(lines)
        return ""

    def _is_pending(self, image_id: str) -> bool:
        return any(pending[0] == image_id for pending in self._pending.values())
