"""Split streamed answer text into speakable chunks: whole sentences, or a clause after a wait.

Pure and Qt-free. The controller feeds each ``TextDelta`` and speaks what comes back; a timer calls
``flush_due`` so a long sentence still starts speaking after ``max_wait`` seconds, cut at a clause
boundary. On a slow machine a sentence can take many seconds to stream: it is never cut into two or
three words; only a sentence that runs long without a clause (``long_phrase_chars``) is cut at a
word boundary, and never inside a word.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

# A sentence ends at . ! ? … (optionally followed by quotes/brackets) and then whitespace, or at a newline.
_END = re.compile(r"""([.!?…]+["'”’)\]]*)(\s+)|(\n+)""")
_CLAUSE = re.compile(r"[,;:–—](\s+)")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st vs etc e.g i.e no fig approx jan feb mar apr jun jul aug sep sept oct nov dec".split()
)


class SentenceSplitter:
    def __init__(
        self,
        max_wait: float = 1.5,
        max_chars: int = 220,
        min_flush_chars: int = 12,
        long_phrase_chars: int = 60,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_wait = max_wait
        self.max_chars = max_chars
        self.min_flush_chars = min_flush_chars  # the shortest clause spoken on its own
        self.long_phrase_chars = long_phrase_chars  # a phrase this long may be cut between words
        self._clock = clock
        self._pending = ""
        self._since: float | None = None  # when the oldest unspoken text arrived

    @property
    def pending(self) -> str:
        return self._pending

    def reset(self) -> None:
        self._pending = ""
        self._since = None

    def feed(self, delta: str) -> list[str]:
        """Add streamed text; return the sentences it completed (possibly none)."""
        if not delta:
            return []
        if not self._pending.strip():
            self._since = self._clock()
        self._pending += delta
        out: list[str] = []
        while True:
            cut = self._sentence_end(self._pending)
            if cut is None and len(self._pending) > self.max_chars:
                head = self._pending[: self.max_chars + 1]
                cut = self._clause_end(head) or self._word_end(head)
            if cut is None:
                break
            self._emit(out, cut)
        return out

    def seconds_until_due(self) -> float | None:
        """How long until ``flush_due`` would flush, or None when it cannot until more text comes."""
        if self._since is None or self._due_cut() is None:
            return None
        return max(0.0, self._since + self.max_wait - self._clock())

    def flush_due(self) -> list[str]:
        """After ``max_wait``: speak up to the last clause boundary (or word boundary of a long phrase)."""
        due = self.seconds_until_due()
        if due is None or due > 0:
            return []
        out: list[str] = []
        self._emit(out, self._due_cut())
        return out

    def finish(self) -> list[str]:
        """The answer is complete: everything left is one last chunk."""
        text = self._pending.strip()
        self.reset()
        return [text] if text else []

    # ------------------------------------------------------------ helpers
    def _due_cut(self) -> int | None:
        """Where a flush may cut the pending text, or None: wait for the sentence to go on."""
        cut = self._clause_end(self._pending)
        if cut is not None and len(self._pending[:cut].strip()) >= self.min_flush_chars:
            return cut
        if len(self._pending.strip()) >= self.long_phrase_chars:
            return self._word_end(self._pending)
        return None

    def _emit(self, out: list[str], cut: int) -> None:
        chunk, self._pending = self._pending[:cut].strip(), self._pending[cut:]
        if chunk:
            out.append(chunk)
        self._since = self._clock() if self._pending.strip() else None

    @staticmethod
    def _sentence_end(text: str) -> int | None:
        for m in _END.finditer(text):
            if m.group(3) is not None:
                return m.end()
            before = text[: m.start(1)].rsplit(None, 1)
            word = before[-1] if before else ""
            if m.group(1).startswith(".") and (word.lower().rstrip(".") in _ABBREVIATIONS or _is_initial(word)):
                continue
            return m.end()
        return None

    @staticmethod
    def _clause_end(text: str) -> int | None:
        last = None
        for m in _CLAUSE.finditer(text):
            last = m.end()
        return last

    @staticmethod
    def _word_end(text: str) -> int | None:
        # Only cut at whitespace that is followed by more text: the last word may still be growing.
        idx = max(text.rstrip().rfind(" "), text.rstrip().rfind("\t"))
        return idx + 1 if idx > 0 else None


def _is_initial(word: str) -> bool:
    """'J' in 'J. Smith', 'U.S' in 'U.S. law': capital initials are not sentence ends."""
    letters = word.replace(".", "")
    return letters.isalpha() and letters.isupper() and (len(letters) == 1 or "." in word)
