"""The user's conversation: turns, the images they refer to, and times. Lives in the GUI process.

The engine is sent the whole conversation with every question (``Describe``), so an engine crash
loses nothing. Images stay in memory only; ``to_text`` / ``save_text`` write a transcript only when
the user asks.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from engine.protocol import Describe, GenerationSettings, ImageInput, Turn


@dataclass(frozen=True)
class Entry:
    """One turn plus what the transcript shows for it."""

    turn: Turn
    time: float
    image_labels: tuple[str, ...] = ()
    cancelled: bool = False
    shown_as: str = ""  # the transcript's words for a built-in question (e.g. "Preset prompt: Detailed")


@dataclass
class Conversation:
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    entries: list[Entry] = field(default_factory=list)
    images: dict[str, ImageInput] = field(default_factory=dict)
    # A smaller copy of an image as the model sees it (a capture resized by the official transform's
    # first step, desktop.capture.Capture.for_model): sent instead of the full image when its side
    # matches the loaded model's; the full image stays for OCR and the transcript.
    model_inputs: dict[str, ImageInput] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    pending_image_ids: list[str] = field(default_factory=list)  # attached, not yet asked about

    # ------------------------------------------------------------ images
    def attach_image(self, image: ImageInput, label: str, model_input: ImageInput | None = None) -> str:
        """Attach an image to the next question (a capture or photo)."""
        self.images[image.image_id] = image
        if model_input is not None:
            self.model_inputs[image.image_id] = model_input
        self.labels[image.image_id] = label
        self.pending_image_ids.append(image.image_id)
        return image.image_id

    @property
    def has_images(self) -> bool:
        return bool(self.images)

    @property
    def last_image_id(self) -> str | None:
        return next(reversed(self.images), None)

    # ------------------------------------------------------------ turns
    @property
    def history(self) -> tuple[Turn, ...]:
        return tuple(e.turn for e in self.entries)

    def build_request(
        self, request_id: int, question: str, settings: GenerationSettings, context: str = "",
        image_size: int | None = None,
    ) -> Describe:
        """The Describe for ``question`` with the pending images attached; nothing is recorded yet.
        ``image_size``: the loaded model's input side (``ModelReady.image_size``), if known."""
        new = tuple(self.pending_image_ids)
        referenced = {i for e in self.entries for i in e.turn.image_ids} | set(new)
        images = tuple(self._for_model(iid, image_size) for iid in self.images if iid in referenced)
        return Describe(
            request_id=request_id,
            conversation_id=self.id,
            question=question,
            history=self.history,
            new_image_ids=new,
            images=images,
            settings=settings,
            context=context,
        )

    def _for_model(self, image_id: str, image_size: int | None) -> ImageInput:
        small = self.model_inputs.get(image_id)
        if small is not None and image_size and small.size == (image_size, image_size):
            return small
        return self.images[image_id]

    def record_exchange(self, request: Describe, answer: str, cancelled: bool = False, shown_as: str = "") -> None:
        """Store the question and its (possibly partial) answer; the images are no longer pending.
        ``shown_as``: what the transcript shows instead of a question the user did not type."""
        now = time.time()
        labels = tuple(self.labels.get(i, "image") for i in request.new_image_ids)
        self.entries.append(Entry(Turn("user", request.question, request.new_image_ids), now, labels,
                                  shown_as=shown_as))
        self.entries.append(Entry(Turn("assistant", answer), now, (), cancelled))
        self.pending_image_ids = [i for i in self.pending_image_ids if i not in request.new_image_ids]

    @property
    def last_answer(self) -> str | None:
        for entry in reversed(self.entries):
            if entry.turn.role == "assistant":
                return entry.turn.text
        return None

    # ------------------------------------------------------------ export
    def to_text(self) -> str:
        """A plain-text transcript, oldest first (what the transcript view shows and Save writes)."""
        lines: list[str] = []
        for entry in self.entries:
            stamp = time.strftime("%H:%M", time.localtime(entry.time))
            if entry.turn.role == "user":
                for label in entry.image_labels:
                    lines.append(f"[{stamp}] Image: {label}")
                lines.append(f"[{stamp}] {entry.shown_as}" if entry.shown_as else f"[{stamp}] You: {entry.turn.text}")
            else:
                suffix = " (stopped)" if entry.cancelled else ""
                lines.append(f"[{stamp}] Lumen{suffix}: {entry.turn.text}")
            lines.append("")
        return "\n".join(lines).rstrip() + "\n" if lines else ""

    def save_text(self, path: Path) -> None:
        path.write_text(self.to_text(), encoding="utf-8")
