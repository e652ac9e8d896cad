"""What the capture code and its per-OS backends (``desktop.capture_macos``) share: a rectangle on the
screen, the smallest region worth describing, and the error a grab raises. A leaf module, so a backend
never imports ``desktop.capture``, which picks it."""

from __future__ import annotations

from dataclasses import dataclass

MIN_REGION = 32  # pixels: below this a cell is not worth describing


class CaptureError(Exception):
    """``reason``: "unsupported", "wayland" (cannot be known there), "permission" (macOS Screen
    Recording), "accessibility" (macOS, the focused control) or "failed"."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class Rect:
    left: int
    top: int
    width: int
    height: int

    def contains(self, x: int, y: int) -> bool:
        return self.left <= x < self.left + self.width and self.top <= y < self.top + self.height

    def intersect(self, other: Rect) -> Rect | None:
        left, top = max(self.left, other.left), max(self.top, other.top)
        right = min(self.left + self.width, other.left + other.width)
        bottom = min(self.top + self.height, other.top + other.height)
        if right <= left or bottom <= top:
            return None
        return Rect(left, top, right - left, bottom - top)

    def as_mss(self) -> dict[str, int]:
        return {"left": self.left, "top": self.top, "width": self.width, "height": self.height}
