"""``python -m leaksentinel``."""

from leaksentinel.cli.boot import entry

entry()
