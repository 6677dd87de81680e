"""The embedded redis-server starts on a free loopback port, serves, and leaves nothing behind."""

from __future__ import annotations

import redis

from core.redis_embedded import EmbeddedRedis


def test_embedded_redis_serves_and_stops() -> None:
    server = EmbeddedRedis()
    url = server.start()
    assert url.startswith("redis://127.0.0.1:")
    client = redis.Redis.from_url(url)
    assert client.ping()
    client.set("k", "v")
    proc = server.proc
    assert proc is not None
    server.stop()
    assert proc.poll() is not None
    assert not server.ping()


def test_two_embedded_servers_do_not_share_state() -> None:
    with EmbeddedRedis() as a, EmbeddedRedis() as b:
        redis.Redis.from_url(a.url).set("only-in-a", 1)
        assert redis.Redis.from_url(b.url).get("only-in-a") is None
