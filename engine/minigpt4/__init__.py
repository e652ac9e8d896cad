"""MiniGPT-4 itself: the torch side, run only in the engine process (and the CLI, training, benchmarks).

The desktop never imports this package; it reaches the model through ``engine.protocol`` and the worker."""
