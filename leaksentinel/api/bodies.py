"""Request bodies and validation errors: hostile input gets a short 400/422, never a 500 or an echo.

Why: posted dumps hold passwords and card numbers. A body that is not UTF-8, or JSON text with a lone
surrogate escape (``"\\ud800"``: valid JSON, but no Unicode text), used to end in a 500 whose traceback
carried the body into the log; and a validation error echoed the whole input (a 2 MB tip, a 2 MB reply).
"""

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

__all__ = [
    "EXCERPT_CHARS",
    "JsonTextGuard",
    "bad_text_response",
    "excerpt",
    "validation_error_response",
]

#: At most this much of a rejected value is shown back in a validation error.
EXCERPT_CHARS = 80
#: A ``\uD800``-``\uDFFF`` escape in JSON text: only then is the parsed body walked for lone surrogates.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> Any:
    """A short, JSON-safe stand-in for a rejected input (bytes decoded leniently, long text cut)."""
    if isinstance(value, bytes | bytearray):
        value = bytes(value[: limit * 4]).decode("utf-8", "replace")
    if isinstance(value, str):
        value = value.encode("utf-8", "replace").decode("utf-8")  # no lone surrogates in the reply
        return value if len(value) <= limit else value[:limit] + f"… ({len(value)} characters)"
    if isinstance(value, dict | list | tuple):
        text = json.dumps(value, ensure_ascii=False, default=str)
        return value if len(text) <= limit else excerpt(text, limit)
    if value is None or isinstance(value, bool | int | float):
        return value
    return excerpt(str(value), limit)


async def validation_error_response(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 shape (``detail`` list of ``loc``/``msg``/``type``), with each input cut short."""
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(err.get("type") == "string_unicode" for err in errors):
        return bad_text_response()  # a text body that is not UTF-8: nothing of it is shown back
    detail = []
    for err in errors[:20]:
        item: dict[str, Any] = {
            "type": str(err.get("type", "")),
            "loc": [p if isinstance(p, int) else excerpt(str(p), 64) for p in err.get("loc", ())],
            "msg": excerpt(str(err.get("msg", "")), 200),
        }
        if "input" in err:
            item["input"] = excerpt(err["input"])
        detail.append(item)
    return JSONResponse({"detail": detail}, status_code=422)


def bad_text_response() -> JSONResponse:
    return JSONResponse(
        {"detail": "the body is not valid UTF-8 text (or holds a lone surrogate escape)"}, status_code=400
    )


def _has_lone_surrogate(obj: Any) -> bool:
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def json_text_is_bad(body: bytes) -> bool:
    """Whether a JSON body would fail as text: not UTF-8, or a lone surrogate in any string."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return True
    if not _SURROGATE_ESCAPE.search(body):
        return False
    try:
        return _has_lone_surrogate(json.loads(body))
    except (ValueError, RecursionError):
        return False  # not JSON: FastAPI's own parser answers that (422)


class JsonTextGuard:
    """ASGI middleware: JSON bodies are checked as text before any route sees them (then replayed).

    Sits inside FastAPI's body-size limit, so what it buffers is already bounded.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in _WRITE_METHODS or not self._is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if json_text_is_bad(body):
            await bad_text_response()(scope, receive, send)
            return
        replay = _replay([{"type": "http.request", "body": body, "more_body": False}], receive)
        await self.app(scope, replay, send)

    @staticmethod
    def _is_json(scope: Scope) -> bool:
        for name, value in scope.get("headers", ()):
            if name == b"content-type":
                kind = value.split(b";", 1)[0].strip().lower()
                return kind == b"application/json" or kind.endswith(b"+json")
        return False


def _replay(messages: list[Message], then: Receive) -> Receive:
    """The buffered messages, then the client's own (which waits for its disconnect)."""
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        return await then()

    return receive
