"""The decoder's thread count follows the machine's load (engine.minigpt4.thread_tuner).

Step costs are modelled on what benchmarks/contention.py measured with real llama.cpp: on a
quiet machine more threads are faster (decoding is bandwidth-bound, so the gain flattens); with k
other busy processes, using more than ``cores - k`` threads makes every step wait for a preempted thread.
"""

from __future__ import annotations

import random

from engine.minigpt4.thread_tuner import ThreadTuner, usable_cores


def step_cost(threads: int, cores: int, busy: int) -> float:
    """Seconds per token: a speed-up that saturates (memory bandwidth; 1.75x from one thread to two, as
    measured) on free cores, a collapse beyond them."""
    free = cores - busy
    n = min(threads, free)
    cost = (1 + n / 6) / n
    return cost * 6.0 if threads > free else cost


def run(tuner: ThreadTuner, cores: int, busy_at, steps: int, noise: float = 0.1, seed: int = 0):
    """Total seconds of the tuner and of the best fixed count at each step (the oracle), and its trail."""
    rng = random.Random(seed)
    total = oracle = 0.0
    trail = []
    for i in range(steps):
        busy = busy_at(i)
        t = tuner.threads()
        seconds = step_cost(t, cores, busy) * (1 + rng.uniform(-noise, noise))
        tuner.observe(t, seconds)
        total += seconds
        oracle += min(step_cost(n, cores, busy) for n in range(1, cores + 1))
        trail.append(tuner.current)
    return total, oracle, trail


def test_quiet_machine_keeps_every_core_and_probing_costs_little():
    for cores in (2, 4, 8):
        total, oracle, trail = run(ThreadTuner(cores), cores, lambda i: 0, 2000)
        assert trail[-1] == cores
        assert sum(c == cores for c in trail) / len(trail) > 0.97
        assert total < 1.04 * oracle, (cores, total / oracle)


def test_a_busy_core_is_left_alone_within_a_few_steps():
    for cores, busy in ((2, 1), (4, 1), (8, 2), (16, 3), (16, 8)):
        total, oracle, trail = run(ThreadTuner(cores), cores, lambda i: busy, 1000)
        best = min(step_cost(n, cores, busy) for n in range(1, cores + 1))
        good = [step_cost(c, cores, busy) < 1.1 * best for c in trail]  # within 10 % of the best count
        settled = good.index(True)
        assert settled < 40, (cores, busy, settled)
        assert sum(good[settled:]) / len(good[settled:]) > 0.95
        assert total < 1.2 * oracle, (cores, busy, total / oracle)  # fixed at every core: 3-6x


def test_follows_a_program_that_starts_and_stops():
    cores = 4

    def busy_at(i):
        return 1 if 300 <= i < 900 else 0

    total, oracle, trail = run(ThreadTuner(cores), cores, busy_at, 2000)
    assert trail[299] == 4
    assert all(c == 3 for c in trail[330:900])  # a sudden slow-down is noticed at once
    assert trail[-1] == 4 and trail.index(4, 900) < 900 + 2 * 256  # and the quiet again by probing
    assert total < 1.15 * oracle, total / oracle


def test_noisy_steps_do_not_make_it_wander():
    total, oracle, trail = run(ThreadTuner(4), 4, lambda i: 0, 3000, noise=0.2, seed=3)
    assert sum(c == 4 for c in trail) / len(trail) > 0.9
    assert total < 1.06 * oracle


def test_one_core_never_probes():
    tuner = ThreadTuner(1)
    for _ in range(100):
        assert tuner.threads() == 1
        tuner.observe(1, 1.0)


def test_usable_cores_is_positive_and_within_the_affinity():
    import os

    n = usable_cores()
    assert 1 <= n <= len(os.sched_getaffinity(0))
