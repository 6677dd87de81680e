"""The ``leaksentinel`` command's entry point: the commands' modules load with the cyclic garbage
collector paused, then are frozen out of its reach.

Why: importing the commands (Typer, SQLAlchemy, numpy, phonenumbers, ...) makes a few hundred thousand
objects, none of them garbage, and the collector walked them again at every collection while they
loaded: about a fifth of a command's start-up CPU (0.15-0.2 of ~0.9 CPU-s for `scan` of a small file).
Frozen (`gc.freeze`), they are not walked by later collections either; the collector runs as before
for everything the command makes afterwards.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

__all__ = ["entry", "load_main"]


def load_main() -> Callable[[], None]:
    """Import the command line with the collector paused; return its entry function."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        from leaksentinel.cli.main import entry as main_entry
    finally:
        gc.freeze()
        if collecting:
            gc.enable()
    return main_entry


def entry() -> None:
    load_main()()
