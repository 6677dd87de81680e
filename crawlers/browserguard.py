"""The network guard for ``--render`` sources: every request the browser makes is checked first.

Why: a rendered page runs the site's JavaScript, which can ``fetch()`` or ``location = ...`` anywhere;
its subresources and frames can point anywhere too. scrapy-playwright routes every request of the page
(navigation, fetch/XHR, scripts, frames) through ``PLAYWRIGHT_ABORT_REQUEST``; this guard resolves the host,
checks every address with the run's ``TargetPolicy`` and aborts what is forbidden (and, as before,
images, fonts and media, never needed to read a posting).

Limits (written down so nobody relies on more): Chromium resolves the name again when it connects, so a
DNS answer that changes within milliseconds (rebinding with TTL 0) is not caught here as it is for
Scrapy's own downloads (crawlers/resolver.py); an HTTP redirect inside the browser is followed by
Chromium without a second routing call, so the redirected request itself is *not* stopped - only its
content is dropped (``NetGuardLateMiddleware.process_response`` checks a rendered page's final URL). An
egress proxy for the browser would close both gaps. WebSockets are refused outright
(``route_web_socket``) and service workers are blocked.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

from core.netguard import TargetPolicy, UnsafeTarget
from crawlers.middlewares.netguard import literal_address

__all__ = ["HEAVY_TYPES", "BrowserGuard", "refuse_websockets", "totals"]

log = logging.getLogger(__name__)

#: Images, fonts and media are never needed to read a posting.
HEAVY_TYPES = frozenset({"image", "font", "media"})
_NO_NETWORK = frozenset({"data", "blob", "about"})

#: This process's refusals (one crawl run per process). Module-level because Scrapy deep-copies its
#: settings, so the guard instance that scrapy-playwright calls is not the one crawlers.run created.
totals: dict[str, Any] = {"blocked": 0, "first_blocked": None}


class BrowserGuard:
    """``PLAYWRIGHT_ABORT_REQUEST``: True (abort) for heavy resources and for forbidden targets."""

    def __init__(self, policy: TargetPolicy) -> None:
        self.policy = policy
        self._logged: set[str] = set()

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
        totals["blocked"] += 1
        if totals["first_blocked"] is None:
            totals["first_blocked"] = reason
        if reason not in self._logged:
            self._logged.add(reason)
            log.warning(
                "%s (browser request to %s refused)", reason, url[:300], extra={"leaksentinel_error": reason}
            )

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
