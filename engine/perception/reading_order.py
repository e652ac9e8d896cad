"""Reading order of OCR lines and the grounding text made from them: pure geometry over
``engine.protocol.TextLine`` (no OCR backend, no image), so the desktop may use it too.

Lines are ordered as a sighted reader would read a UI screen: rows top to bottom, items in a row
left to right, and side-by-side blocks of prose (columns) one after the other.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from engine.protocol import TextLine

PROSE_RATIO = 8.0  # median width/height of the lines of a prose column (about 16+ characters)
PROSE_LEADING = 0.6  # ... and the gap between its lines is under this fraction of a line's height


def reading_order(lines: Sequence[TextLine]) -> tuple[TextLine, ...]:
    """Order lines as a sighted reader would on a UI screen (a recursive XY-cut).

    Rows come first (menus, form rows, button rows and tables read across), except that
    side-by-side columns of prose are read one column at a time. Blocks whose lines interleave
    vertically (a sidebar beside a content pane) have no row gap and so are read as columns.
    """
    return tuple(_order(list(lines)))


def _order(lines: list[TextLine]) -> list[TextLine]:
    if len(lines) <= 1:
        return lines
    rows, gap = _split(lines, axis=1, widest_only=True)  # sections first, then their rows
    height = statistics.median(_height(line) for line in lines)
    if len(rows) > 1 and gap >= PROSE_LEADING * height:  # a gap wider than a paragraph's leading
        return [line for row in rows for line in _order(row)]
    columns, _ = _split(lines, axis=0)
    if len(columns) > 1 and any(_is_prose(c) for c in columns):
        return [line for column in columns for line in _order(column)]
    for groups in (rows, columns):
        if len(groups) > 1:
            return [line for group in groups for line in _order(group)]
    return sorted(lines, key=lambda line: (line.box[1], line.box[0]))


def _split(lines: list[TextLine], axis: int, widest_only: bool = False) -> tuple[list[list[TextLine]], int]:
    """Groups separated by a gap along ``axis`` (0: x, vertical gutters; 1: y, row gaps), and the
    narrowest gap cut.

    ``widest_only``: cut only at the widest gaps (within 80 %), so that the recursion separates
    big blocks (windows, sections) before their lines.
    """
    ordered = sorted(lines, key=lambda line: line.box[axis])
    groups = [[ordered[0]]]
    gaps = []
    end = ordered[0].box[axis + 2]
    for line in ordered[1:]:
        gap = line.box[axis] - end
        if gap > 0:
            groups.append([])
            gaps.append(gap)
        groups[-1].append(line)
        end = max(end, line.box[axis + 2])
    if not gaps:
        return groups, 0
    cut = 0.8 * max(gaps) if widest_only else 0
    merged = [groups[0]]
    for gap, group in zip(gaps, groups[1:]):
        if gap >= cut:
            merged.append(group)
        else:
            merged[-1].extend(group)
    return merged, min(g for g in gaps if g >= cut)


def _is_prose(lines: list[TextLine]) -> bool:
    """A stack of 3+ long, tightly spaced lines: wrapped text rather than form labels or a table."""
    if len(lines) < 3:
        return False
    stack = sorted(lines, key=lambda line: line.box[1])
    height = statistics.median(_height(line) for line in stack)
    leading = statistics.median(b.box[1] - a.box[3] for a, b in zip(stack, stack[1:]))
    ratio = statistics.median(_width(line) / max(1, _height(line)) for line in stack)
    return ratio >= PROSE_RATIO and leading < PROSE_LEADING * height


def _width(line: TextLine) -> int:
    return line.box[2] - line.box[0]


def _height(line: TextLine) -> int:
    return line.box[3] - line.box[1]


def rows(lines: Sequence[TextLine]) -> tuple[tuple[TextLine, ...], ...]:
    """Group consecutive lines (already in reading order) that sit side by side on one row."""
    grouped: list[list[TextLine]] = []
    for line in lines:
        if grouped and _same_row(grouped[-1][-1], line):
            grouped[-1].append(line)
        else:
            grouped.append([line])
    return tuple(tuple(row) for row in grouped)


def _same_row(a: TextLine, b: TextLine) -> bool:
    overlap = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1])
    return b.box[0] >= a.box[2] and overlap > 0.5 * min(_height(a), _height(b))


# ---------------------------------------------------------------- grounding

GROUNDING_MAX_CHARS = 1500  # about 400 LLaMA tokens of the 2000-position window
ROW_SEPARATOR = " | "


def format_grounding(lines: Sequence[TextLine], max_chars: int = GROUNDING_MAX_CHARS) -> str:
    """The OCR text for ``Describe.context``: one row per line, items of a row joined by " | ".

    The engine frames it as a separate, quoted part of the question (``engine.minigpt4.prompts.with_context``).
    Text past ``max_chars`` is cut at a row boundary and the cut is stated. No lines give "".
    """
    out: list[str] = []
    used = 0
    for row in rows(lines):
        text = ROW_SEPARATOR.join(_clean(line.text) for line in row).strip()
        if not text:
            continue
        if used + len(text) + 1 > max_chars:
            out.append("[more text on the screen is not shown]")
            break
        out.append(text)
        used += len(text) + 1
    return "\n".join(out)


def _clean(text: str) -> str:
    # Keep screen text from closing the quoted block the engine wraps it in.
    return " ".join(text.replace('"""', '"').split())
