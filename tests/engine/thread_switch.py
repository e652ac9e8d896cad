"""A thread tuner that switches on every decoding step, for the tests that the count never changes an
answer (tests/engine/test_llamacpp.py through llama.cpp, test_reference_parity.py through torch)."""

from __future__ import annotations

from collections.abc import Callable

from engine.minigpt4.thread_tuner import ThreadTuner


class EveryStepSwitches(ThreadTuner):
    """Asks for 1, 2, 1, ... threads; ``seen`` holds (asked, used) per timed step, ``used`` read back
    from the back-end by ``read_back``."""

    def __init__(self, read_back: Callable[[], int]) -> None:
        super().__init__(2)
        self.read_back = read_back
        self.seen: list[tuple[int, int]] = []

    def threads(self) -> int:
        return 1 + len(self.seen) % 2

    def observe(self, threads: int, seconds: float) -> None:
        self.seen.append((threads, self.read_back()))

    def switched_every_step(self) -> bool:
        return all(asked == used for asked, used in self.seen) and {used for _, used in self.seen} == {1, 2}
