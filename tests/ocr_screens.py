"""Synthetic UI screenshots with known text, for the OCR tests and benchmarks/ocr_grounding.py.

Each screen is an RGB PIL image plus its text in reading order (one string per item). PIL screens
use the DejaVu fonts at 12-16 px; Qt screens are real widgets grabbed offscreen (needs a
QApplication, e.g. pytest-qt's ``qapp`` or ``QT_QPA_PLATFORM=offscreen``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


@dataclass(frozen=True)
class Screen:
    name: str
    image: Image.Image
    items: tuple[str, ...]  # the visible text, in reading order

    @property
    def text(self) -> str:
        return " ".join(self.items)


def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_DIR / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")), size)


def _draw(size: tuple[int, int], items: list[tuple[str, int, int, int]], name: str,
          fg: str = "black", bg: str = "white") -> Screen:
    image = Image.new("RGB", size, bg)
    draw = ImageDraw.Draw(image)
    for text, x, y, px in items:
        draw.text((x, y), text, fill=fg, font=_font(px))
    return Screen(name, image, tuple(text for text, *_ in items))


def save_dialog() -> Screen:
    """The environment probe's 760x330 dialog: menu bar, message, three buttons, status bar."""
    items = [
        ("File Edit View Help", 10, 8, 14),
        ("Save changes to document.txt?", 40, 60, 16),
        ("Your changes will be lost if you don't save them.", 40, 95, 13),
        ("Don't Save", 60, 270, 13),
        ("Cancel", 300, 270, 13),
        ("Save", 520, 270, 13),
        ("Battery 87%", 10, 305, 12),
        ("Wi-Fi: Connected", 200, 305, 12),
        ("12:45 PM", 600, 305, 12),
    ]
    image = Image.new("RGB", (760, 330), "white")
    draw = ImageDraw.Draw(image)
    for x0, x1 in ((50, 150), (290, 360), (510, 570)):  # button frames
        draw.rectangle((x0, 264, x1, 292), outline="gray")
    for text, x, y, px in items:
        draw.text((x, y), text, fill="black", font=_font(px))
    return Screen("pil-dialog", image, tuple(text for text, *_ in items))


def settings_form() -> Screen:
    """Label/value rows (read across) with a title and a footer."""
    rows = [("Account settings", 20, 12, 16)]
    fields = [("Name:", "Ada Lovelace"), ("Email:", "ada@example.org"), ("Phone:", "+44 20 7946 0958"),
              ("Language:", "English (UK)")]
    y = 55
    for label, value in fields:
        rows += [(label, 20, y, 13), (value, 180, y, 13)]
        y += 34
    rows.append(("Last saved 3 minutes ago", 20, y + 10, 12))
    return _draw((520, y + 40), rows, "pil-form")


def two_columns() -> Screen:
    """Two columns of prose: each column must be read top to bottom before the next."""
    left = ["The quarterly report is ready for", "review by the finance team and", "should be signed off by Friday."]
    right = ["Remember to book the meeting room", "for the planning session next week", "and to invite the new designers."]
    items = [("Team news", 20, 10, 16)]
    items += [(text, 20, 50 + 22 * i, 13) for i, text in enumerate(left)]
    items += [(text, 420, 50 + 22 * i, 13) for i, text in enumerate(right)]
    return _draw((800, 140), items, "pil-columns")


def dark_toolbar() -> Screen:
    """Light text on a dark theme, 12-14 px."""
    items = [("Inbox (42)", 12, 10, 14), ("Drafts", 140, 10, 14), ("Sent", 240, 10, 14),
             ("Meeting moved to Thursday at 3 pm", 12, 50, 13), ("From: Grace Hopper", 12, 78, 12)]
    return _draw((480, 110), items, "pil-dark", fg="#e8e8e8", bg="#202124")


def pil_screens() -> list[Screen]:
    return [save_dialog(), settings_form(), two_columns(), dark_toolbar()]


def qt_dialog() -> Screen:
    """A real Qt dialog (labels, line edit, check box, buttons) grabbed offscreen."""
    from PySide6.QtGui import QFont
    from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                                   QVBoxLayout, QWidget)

    widget = QWidget()
    widget.setFont(QFont("DejaVu Sans", 11))  # 11 pt = 14-15 px at 96 dpi
    layout = QVBoxLayout(widget)
    layout.addWidget(QLabel("Printer settings"))
    layout.addWidget(QLabel("The printer is out of paper."))
    edit = QLineEdit("Office Laser 2")
    layout.addWidget(edit)
    layout.addWidget(QCheckBox("Print on both sides"))
    buttons = QHBoxLayout()
    for label in ("Retry", "Cancel"):
        buttons.addWidget(QPushButton(label))
    layout.addLayout(buttons)
    widget.resize(420, 220)
    image = _grab(widget)
    widget.deleteLater()
    items = ("Printer settings", "The printer is out of paper.", "Office Laser 2", "Print on both sides",
             "Retry", "Cancel")
    return Screen("qt-dialog", image, items)


def qt_settings_window() -> Screen:
    """A larger Qt window at 12-16 px: group box, radio buttons, combo box, list, buttons."""
    from PySide6.QtGui import QFont
    from PySide6.QtWidgets import (QComboBox, QGroupBox, QHBoxLayout, QLabel, QListWidget,
                                   QPushButton, QRadioButton, QVBoxLayout, QWidget)

    def font(px: int) -> QFont:
        f = QFont("DejaVu Sans")
        f.setPixelSize(px)
        return f

    widget = QWidget()
    widget.setFont(font(13))
    layout = QVBoxLayout(widget)
    title = QLabel("Notification preferences")
    title.setFont(font(16))
    layout.addWidget(title)
    group = QGroupBox("Email alerts")
    inner = QVBoxLayout(group)
    for text in ("Send me a daily summary", "Only urgent messages"):
        inner.addWidget(QRadioButton(text))
    layout.addWidget(group)
    combo = QComboBox()
    combo.addItems(["Quiet hours from 10 PM", "Quiet hours from 11 PM"])
    layout.addWidget(combo)
    items = QListWidget()
    items.setFont(font(12))
    items.addItems(["Calendar reminders", "Shared document comments", "Security warnings"])
    items.setFixedHeight(70)
    layout.addWidget(items)
    row = QHBoxLayout()
    for text in ("Apply", "Close"):
        row.addWidget(QPushButton(text))
    layout.addLayout(row)
    widget.resize(520, 380)
    image = _grab(widget)
    widget.deleteLater()
    truth = ("Notification preferences", "Email alerts", "Send me a daily summary", "Only urgent messages",
             "Quiet hours from 10 PM", "Calendar reminders", "Shared document comments",
             "Security warnings", "Apply", "Close")
    return Screen("qt-settings", image, truth)


def _grab(widget: object) -> Image.Image:
    from PySide6.QtGui import QImage

    qimage = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)  # type: ignore[attr-defined]
    width, height = qimage.width(), qimage.height()
    stride = qimage.bytesPerLine()
    data = bytes(qimage.constBits())[: stride * height]
    return Image.frombuffer("RGB", (width, height), data, "raw", "RGB", stride, 1).copy()


def edit_distance(a: Sequence[object], b: Sequence[object]) -> int:
    """Levenshtein distance between two sequences (characters of a string, or its words)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def char_accuracy(predicted: str, truth: str) -> float:
    """1 - (Levenshtein distance / len(truth)) on whitespace-normalised text, floored at 0."""
    a, b = " ".join(predicted.split()), " ".join(truth.split())
    return max(0.0, 1.0 - edit_distance(a, b) / max(1, len(b)))


def full_hd_desktop() -> Screen:
    """All PIL screens as windows on a 1920x1080 desktop, stacked so their reading order is known."""
    desktop = Image.new("RGB", (1920, 1080), "#3a6ea5")
    items: list[str] = []
    y = 4
    for x, screen in zip((40, 900, 300, 1300), pil_screens()):
        desktop.paste(screen.image, (x, y))
        items.extend(screen.items)
        y += screen.image.height + 12
    return Screen("pil-desktop-1080p", desktop, tuple(items))
