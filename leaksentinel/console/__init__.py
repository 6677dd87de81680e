"""The web console: server-rendered pages over the same actions and key rules as the HTTP API.

``leaksentinel.api.app.create_app`` calls `mount_console` when this package is importable.
"""

from leaksentinel.console.routes import mount_console

__all__ = ["mount_console"]
