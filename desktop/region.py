"""Keyboard region drill-down: a 3x3 grid laid out like a number pad, zoomed as often as useful.

Pure logic (no Qt, no capture): the controller feeds key names and acts on the returned ``Step``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from desktop import messages
from desktop.capture import Rect, grid_cell


@dataclass(frozen=True)
class Step:
    action: str  # "moved", "too_small", "describe", "ask", "cancel", "ignored"
    rect: Rect
    message: str = ""


class RegionNavigator:
    def __init__(self, whole: Rect) -> None:
        self._stack = [whole]

    @property
    def rect(self) -> Rect:
        return self._stack[-1]

    @property
    def depth(self) -> int:
        return len(self._stack) - 1

    def key(self, name: str) -> Step:
        if name.isdigit() and name != "0":
            cell = grid_cell(self.rect, int(name))
            if cell is None:
                return Step("too_small", self.rect, messages.tr(messages.REGION_TOO_SMALL))
            self._stack.append(cell)
            return Step("moved", cell, self.describe_position(int(name)))
        if name in ("0", "backspace"):
            if len(self._stack) > 1:
                self._stack.pop()
            return Step("moved", self.rect, self.describe_position(None))
        if name in ("enter", "space"):
            return Step("describe", self.rect)
        if name == "q":
            return Step("ask", self.rect)
        if name == "escape":
            return Step("cancel", self.rect, messages.tr(messages.REGION_CANCELLED))
        return Step("ignored", self.rect)

    def describe_position(self, key: int | None) -> str:
        if self.depth == 0:
            name = messages.tr(messages.REGION_TOP)
        elif key is None:
            name = messages.tr(messages.REGION_ZOOMED_OUT)
        else:
            name = messages.tr(messages.REGION_CELL_NAMES[key])
        return messages.tr(cell_message()).format(name=name, width=self.rect.width, height=self.rect.height)


def cell_message() -> str:
    """macOS lays the screen out in points (a Retina point is 2x2 pixels; the grab itself is at pixel
    resolution, see capture_macos), elsewhere rectangles are physical pixels: say the unit they are in."""
    return messages.REGION_CELL_POINTS if sys.platform == "darwin" else messages.REGION_CELL
