"""The crawl's Scrapy settings leave out what a crawl job never uses, without importing it."""

from __future__ import annotations

import subprocess
import sys


def test_the_telnet_console_and_remote_control_are_neither_enabled_nor_imported() -> None:
    # In a process of its own: this test run may have imported aiohttp for other reasons.
    code = (
        "import sys\n"
        "from scrapy.settings import Settings\n"
        "s = Settings(); s.setmodule('crawlers.settings', priority='project')\n"
        "enabled = s.get_component_priority_dict_with_base('EXTENSIONS')\n"
        "print(sorted(enabled))\n"
        "print('aiohttp' in sys.modules, 'twisted.conch' in sys.modules)\n"
        "print(sorted(k for k in s.attributes if k.startswith('_')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    enabled, imported, private = out.stdout.splitlines()
    assert "TelnetConsole" not in enabled and "RemoteControl" not in enabled
    assert "crawlers.extensions.lost_items.LostItems" in enabled and "CoreStats" in enabled
    assert imported == "False False"  # aiohttp and twisted.conch: ~0.2 CPU-s and ~6 MB per crawl process
    assert private == "[]"  # the module's helpers are not settings
