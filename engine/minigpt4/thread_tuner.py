"""How many CPU threads the next decoding step uses: the count that is fastest right now.

The CPU threads of llama.cpp and of torch meet at a barrier after every operation (a few hundred per
token). When another program keeps a core busy (a browser tab, a virus scan, a build, the screen
reader), the thread on that core is preempted and every other thread waits for it at each barrier.
Measured on the 2-core test machine with one busy process beside it (benchmarks/README.md): llama.cpp
Q4_K_M decoding on both cores fell from ~130 to ~33 tokens/s while one thread kept ~76; torch fp32
decoding of the same model fell from 17 to 7, one thread keeping 18. On a quiet machine more threads
win (llama.cpp 1.75x from one to two). No fixed count is right for both, and a user's machine changes
from minute to minute, so each decoder measures its own steps (llamacpp_backend.LlamaCppDecoder; the
torch path through generation.TunedThreads, which also leaves the vision encoder at the settled count):

- it runs at the count that has been fastest (first: every core it may use);
- now and then it tries another count (one fewer or one more) for a few steps and moves there when
  that is clearly faster; where it is about as fast (a plateau) it looks further that way at once; a probe that loses makes the next one wait twice as long, and one step twice
  as slow ends it (so a steady machine pays 1-3 % for the probing); a move or a sudden slow-down brings
  the next probe forward at once.

The thread count never changes a result: each output value is computed by one thread whatever the
count (the parity tests run with a probe on every step).
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    """Physical cores this process may run on (hyperthreads do not speed up decoding)."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:  # Windows, macOS
        allowed = os.cpu_count() or 1
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except Exception:
        physical = None
    return max(1, min(allowed, physical or allowed))


class ThreadTuner:
    """``threads()`` before each single-token step, ``observe(threads, seconds)`` after it."""

    def __init__(self, most: int, every: int = 16, longest: int = 256, span: int = 3, margin: float = 0.9,
                 slow_down: float = 2.0) -> None:
        self.most = max(1, most)
        self.current = self.most
        self.every, self.longest, self.span, self.margin, self.slow_down = every, longest, span, margin, slow_down
        self._wait = span  # steps until the next probe: soon at first, to learn the machine
        self._steps = 0
        self._mean: float | None = None  # recent seconds per step at ``current`` (moving average)
        self._probe: int | None = None
        self._probe_seconds: list[float] = []
        self._downward = True  # which way the next probe goes
        self._going_down = True  # which way the current probe went
        self._stride = {True: 1, False: 1}  # how far the next probe goes, down and up

    def threads(self) -> int:
        return self._probe or self.current

    def observe(self, threads: int, seconds: float) -> None:
        if self._probe is not None:
            if threads == self._probe:
                self._probe_seconds.append(seconds)
                clearly_slower = self._mean is not None and seconds > self.slow_down * self._mean
                if clearly_slower or len(self._probe_seconds) >= self.span:
                    self._end_probe()
            return
        if threads != self.current:
            return
        if self._mean is not None and seconds > self.slow_down * self._mean:
            self._wait = 0  # something else took a core: look for a better count now
        self._mean = seconds if self._mean is None else 0.75 * self._mean + 0.25 * seconds
        self._steps += 1
        if self.most > 1 and self._steps >= self._wait:
            self._start_probe()

    def _start_probe(self) -> None:
        down = max(1, self.current - self._stride[True])
        up = min(self.most, self.current + self._stride[False])
        self._going_down = down < self.current and (self._downward or up == self.current)
        self._probe = down if self._going_down else up
        self._downward = not self._downward
        self._probe_seconds = []

    def _end_probe(self) -> None:
        probe = sorted(self._probe_seconds)[len(self._probe_seconds) // 2]  # the median: one step may stall
        way = self._going_down
        if self._mean is None or probe < self.margin * self._mean:  # faster: move, and go on that way
            self._downward, self._stride[way] = way, 1
            self.current, self._mean, self._wait = self._probe, probe, 0
        elif probe * self.margin < self._mean and self._probe not in (1, self.most):
            self._downward, self._stride[way], self._wait = way, 2 * self._stride[way], 0  # as fast: look further
        else:  # slower: wait longer before the next probe
            self._stride[way] = 1
            self._wait = min(self.longest, max(self.every, 2 * self._wait))
        self._probe = None
        self._steps = 0
