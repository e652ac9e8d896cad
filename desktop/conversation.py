"""The user's conversation: turns, the images they refer to, and times. Lives in the GUI process.

One image per conversation by default (MiniGPT-4 was trained on one image per chat): a new capture
or photo starts the ``next()`` conversation, which keeps the earlier ones' turns (not their images)
for the transcript. The engine is sent the conversation's turns with every question (``Describe``)
and each image's bytes once; when it has lost them (a restarted engine) it says which it needs and
they are sent again, so an engine crash loses nothing. Images stay in memory only; ``to_text`` /
``save_text`` write a transcript only when the user asks.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
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
    sent_image_ids: set[str] = field(default_factory=set)  # bytes sent to the engine (it keeps them)
    earlier: tuple[tuple[Entry, ...], ...] = ()  # the turns of the conversations before this one

    def next(self) -> Conversation:
        """A new conversation (for a new image); this one's turns stay in its transcript."""
        return Conversation(earlier=self.earlier + ((tuple(self.entries),) if self.entries else ()))

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
        """The Describe for ``question`` with the pending images attached, carrying the bytes of the
        images not yet sent (``mark_sent`` once it is); nothing is recorded yet.
        ``image_size``: the loaded model's input side (``ModelReady.image_size``), if known."""
        new = tuple(self.pending_image_ids)
        referenced = {i for e in self.entries for i in e.turn.image_ids} | set(new)
        unsent = [iid for iid in self.images if iid in referenced and iid not in self.sent_image_ids]
        return Describe(
            request_id=request_id,
            conversation_id=self.id,
            question=question,
            history=self.history,
            new_image_ids=new,
            images=self.model_images(unsent, image_size),
            settings=settings,
            context=context,
        )

    def model_images(self, image_ids: Iterable[str], image_size: int | None) -> tuple[ImageInput, ...]:
        """What to send the engine for ``image_ids``: each one's model-sized copy when it matches
        the loaded model's input side, else the full image."""
        return tuple(self._for_model(iid, image_size) for iid in image_ids)

    def _for_model(self, image_id: str, image_size: int | None) -> ImageInput:
        small = self.model_inputs.get(image_id)
        if small is not None and image_size and small.size == (image_size, image_size):
            return small
        return self.images[image_id]

    def mark_sent(self, request: Describe) -> None:
        self.sent_image_ids.update(image.image_id for image in request.images)

    def drop_images(self, image_ids: Iterable[str]) -> None:
        """Forget attached images that were never answered about (their request failed)."""
        for image_id in image_ids:
            if image_id in self.pending_image_ids:
                self.pending_image_ids.remove(image_id)
                for store in (self.images, self.model_inputs, self.labels):
                    store.pop(image_id, None)
                self.sent_image_ids.discard(image_id)

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
        for entry in reversed([e for group in self.earlier for e in group] + self.entries):
            if entry.turn.role == "assistant":
                return entry.turn.text
        return None

    # ------------------------------------------------------------ export
    def to_text(self) -> str:
        """A plain-text transcript of this and the earlier conversations, oldest first (what the
        transcript view shows and Save writes)."""
        lines: list[str] = []
        for n, group in enumerate((*self.earlier, tuple(self.entries))):
            if n and group:
                lines += ["New conversation", ""]
            lines += self._lines(group)
        return "\n".join(lines).rstrip() + "\n" if lines else ""

    @staticmethod
    def _lines(entries: Iterable[Entry]) -> list[str]:
        lines: list[str] = []
        for entry in entries:
            stamp = time.strftime("%H:%M", time.localtime(entry.time))
            if entry.turn.role == "user":
                for label in entry.image_labels:
                    lines.append(f"[{stamp}] Image: {label}")
                lines.append(f"[{stamp}] {entry.shown_as}" if entry.shown_as else f"[{stamp}] You: {entry.turn.text}")
            else:
                suffix = " (stopped)" if entry.cancelled else ""
                lines.append(f"[{stamp}] Lumen{suffix}: {entry.turn.text}")
            lines.append("")
        return lines

    def save_text(self, path: Path) -> None:
        path.write_text(self.to_text(), encoding="utf-8")
