"""Fixtures of the fleet tests: a broker of their own, and the role/CLI helpers of tests/leaksentinel.

The broker is the machine's Redis when one answers (``LEAKSENTINEL_TEST_REDIS_URL``, else 127.0.0.1:6379), on a
database number no one else uses (claimed with a key, checked empty, flushed afterwards), so tests running at the
same time never see each other's queues, leases or fired slots; without a Redis server it is an embedded one.
"""

from __future__ import annotations

import os
import random
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "leaksentinel"))  # service_procs

MACHINE_REDIS = os.environ.get("LEAKSENTINEL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CLAIM_KEY = "leaksentinel-test:claimed-by"
CLAIM_S = 1800


def _claim_machine_redis() -> tuple[str, object, str] | None:
    """(URL on a free database number, client, token), or None when no Redis server answers."""
    import redis
    from redis.connection import parse_url

    try:
        base = parse_url(MACHINE_REDIS)
    except ValueError:
        return None
    token = f"{os.getpid()}:{secrets.token_hex(8)}"
    numbers = list(range(1, 16))
    random.shuffle(numbers)
    for number in numbers:
        client = redis.Redis(**{**base, "db": number}, socket_timeout=3, socket_connect_timeout=2)
        try:
            if not client.set(CLAIM_KEY, token, nx=True, ex=CLAIM_S):
                continue
            if client.dbsize() != 1:  # somebody's data without a claim: not ours to use or flush
                client.delete(CLAIM_KEY)
                continue
        except (redis.RedisError, OSError):
            return None
        host = base.get("host", "127.0.0.1")
        port = base.get("port", 6379)
        password = base.get("password")
        auth = f":{password}@" if password else ""
        return f"redis://{auth}{host}:{port}/{number}", client, token
    return None


@pytest.fixture
def fleet_broker() -> Iterator[str]:
    """A Redis URL for one fleet: the machine's server on a database of its own, else an embedded one."""
    claimed = _claim_machine_redis()
    if claimed is None:
        from core.redis_embedded import EmbeddedRedis

        with EmbeddedRedis() as server:
            yield server.url
        return
    url, client, token = claimed
    try:
        yield url
    finally:
        if client.get(CLAIM_KEY) in (token, token.encode()):  # type: ignore[attr-defined]
            client.flushdb()  # type: ignore[attr-defined]
