"""The network guard for ``--render`` sources: every request the browser makes is checked first.

Why: a rendered page runs the site's JavaScript, which can ``fetch()`` or ``location = ...`` anywhere;
its subresources and frames can point anywhere too. Two layers:

* scrapy-playwright routes every request of the page (navigation, fetch/XHR, scripts, frames) through
  ``PLAYWRIGHT_ABORT_REQUEST``; this guard resolves the host, checks every address with the run's
  ``TargetPolicy`` and aborts what is forbidden (and, as before, images, fonts and media, never needed to
  read a posting). It gives the early, precise refusal.
* Chromium itself connects only through the run's egress proxy (crawlers/browserproxy.py, loopback not
  bypassed), which resolves each host once, checks every address and connects to the checked IP. That
  closes what routing cannot see: HTTP redirects Chromium follows without a second routing call, and a
  DNS answer that changes between the check here and Chromium's connect (Chromium resolves nothing when
  it uses a proxy).

WebSockets are refused outright (``route_web_socket``) and service workers are blocked. Refusals of both
layers are counted in ``totals`` (``record_refusal``), which crawlers.run adds to the run's summary.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any
from urllib.parse import urlsplit

from core.netguard import TargetPolicy, UnsafeTarget
from crawlers.middlewares.netguard import literal_address

__all__ = ["HEAVY_TYPES", "BrowserGuard", "record_refusal", "refuse_websockets", "totals"]

log = logging.getLogger(__name__)

#: Images, fonts and media are never needed to read a posting.
HEAVY_TYPES = frozenset({"image", "font", "media"})
_NO_NETWORK = frozenset({"data", "blob", "about"})

#: This process's refusals (one crawl run per process). Module-level because Scrapy deep-copies its
#: settings, so the guard instance that scrapy-playwright calls is not the one crawlers.run created.
totals: dict[str, Any] = {"blocked": 0, "first_blocked": None}
_lock = threading.Lock()  # the browser proxy records from its own thread
_logged: set[str] = set()


def record_refusal(reason: str, target: str) -> None:
    """Count a refused browser request in ``totals``; log each reason once, marked as the run's error."""
    with _lock:
        totals["blocked"] += 1
        if totals["first_blocked"] is None:
            totals["first_blocked"] = reason
        first = reason not in _logged
        _logged.add(reason)
    if first:
        log.warning(
            "%s (browser request to %s refused)", reason, target[:300], extra={"leaksentinel_error": reason}
        )


class BrowserGuard:
    """``PLAYWRIGHT_ABORT_REQUEST``: True (abort) for heavy resources and for forbidden targets."""

    def __init__(self, policy: TargetPolicy) -> None:
        self.policy = policy

    async def refusal(self, url: str) -> str | None:
        """Why the browser may not fetch ``url`` (it is already parsed by Chromium: WHATWG form), or None."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return f"blocked: not a valid URL ({url[:200]})"
        scheme = parts.scheme.lower()
        if scheme in _NO_NETWORK:
            return None
        if scheme not in {"http", "https", "ws", "wss"}:
            return f"blocked: {scheme or 'no'} scheme is not fetched by the browser ({url[:200]})"
        host = parts.hostname or ""
        if not host:
            return f"blocked: URL has no host ({url[:200]})"
        if not self.policy.checks_addresses:
            return None
        ip = literal_address(host)
        if ip is not None:
            reason = self.policy.refusal(ip)
            return f"blocked: {reason}" if reason else None
        try:
            await asyncio.to_thread(
                self.policy.resolve, host, port or (443 if scheme in {"https", "wss"} else 80)
            )
        except UnsafeTarget as exc:
            return str(exc) if str(exc).startswith("blocked:") else f"blocked: {exc}"
        except OSError as exc:  # fail closed: the browser's own lookup might answer differently
            return f"blocked: cannot resolve {host}: {exc}"
        return None

    def note(self, reason: str, url: str) -> None:
        record_refusal(reason, url)

    async def __call__(self, request: Any) -> bool:
        if request.resource_type in HEAVY_TYPES:
            return True
        reason = await self.refusal(str(request.url))
        if reason is None:
            return False
        self.note(reason, str(request.url))
        return True


async def refuse_websockets(page: Any, request: Any) -> None:
    """Page init callback: the page's WebSockets never reach a server (page.route does not see them)."""

    async def handler(ws: Any) -> None:
        await ws.close(code=1008, reason="blocked by leaksentinel")

    await page.route_web_socket("**", handler)
