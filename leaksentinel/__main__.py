"""``python -m leaksentinel``."""

from leaksentinel.cli.main import entry

entry()
