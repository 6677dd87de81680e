"""The verification snippet security teams copy from docs/alerts.md works as documented: it accepts a
genuine delivery, and rejects a tampered body, a stale timestamp and a wrong secret."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from alerting.signing import sign

DOC = Path(__file__).resolve().parents[2] / "docs" / "alerts.md"


def _snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def _documented_verify() -> Any:
    code = next(s for s in _snippets() if "def verify(" in s)
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # the documented code, exactly as a reader copies it
    return namespace["verify"]


def test_documented_snippet_accepts_genuine_and_rejects_tampered_and_stale() -> None:
    verify = _documented_verify()
    body = b'{"event_id":"e1","type":"alert.created","alert":{"id":7}}'
    header = sign("s3cret", body)
    assert verify("s3cret", body, header)
    assert not verify("s3cret", body.replace(b"7", b"8"), header)  # tampered body
    assert not verify("wrong", body, header)  # wrong secret
    stale = sign("s3cret", body, timestamp=int(time.time()) - 301)
    assert not verify("s3cret", body, stale)  # older than five minutes: a replay
    assert not verify("s3cret", body, "t=abc,v1=zz")  # malformed: rejected, never raises
    assert not verify("s3cret", body, "")


def test_documented_snippet_is_the_shipped_one() -> None:
    import inspect

    from alerting import signing

    assert inspect.getsource(signing.verify).strip() in "".join(_snippets())
