"""Entry point of the frozen app (PyInstaller). The engine runs in a process spawned from this same
executable: ``multiprocessing.freeze_support()`` must run first, so that a spawned child runs the
engine loop instead of starting a second app."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from desktop.__main__ import main

    sys.exit(main())
