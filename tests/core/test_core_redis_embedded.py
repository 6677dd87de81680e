"""The embedded redis-server: serves only clients with its password, cannot be reconfigured or made to
load code, announces its URL in a file only the service user can read, and leaves nothing behind."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from core.celery_app import RUNNING_REDIS_FILE, announce_embedded_redis, broker_url
from core.redis_embedded import DISABLED_COMMANDS, EmbeddedRedis
from core.settings import load_settings


def test_embedded_redis_serves_and_stops() -> None:
    server = EmbeddedRedis()
    url = server.start()
    assert url.startswith("redis://:") and "@127.0.0.1:" in url
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
        assert a.password != b.password
        redis.Redis.from_url(a.url).set("only-in-a", 1)
        assert redis.Redis.from_url(b.url).get("only-in-a") is None


def test_a_client_without_the_password_is_refused() -> None:
    with EmbeddedRedis() as server:
        # What any local user could do: speak RESP to the port and push a task on the crawl queue.
        with socket.create_connection((server.host, server.port), timeout=2) as sock:
            sock.sendall(b"*3\r\n$5\r\nLPUSH\r\n$5\r\ncrawl\r\n$2\r\n{}\r\n")
            assert sock.recv(200).startswith(b"-NOAUTH")
        anonymous = redis.Redis(host=server.host, port=server.port, socket_timeout=2)
        with pytest.raises(redis.exceptions.AuthenticationError):
            anonymous.lpush("crawl", "{}")
        wrong = redis.Redis(host=server.host, port=server.port, password="guess", socket_timeout=2)
        with pytest.raises(redis.exceptions.AuthenticationError):
            wrong.ping()
        # Nothing reached the queue.
        assert redis.Redis.from_url(server.url).llen("crawl") == 0


def test_config_module_and_debug_are_gone_even_with_the_password(tmp_path: Path) -> None:
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url, socket_timeout=2)
        with pytest.raises(redis.exceptions.ResponseError, match="unknown command"):
            client.config_set("dir", str(tmp_path))
        with pytest.raises(redis.exceptions.ResponseError, match="unknown command"):
            client.config_get("dir")
        for command in ("MODULE LIST", "DEBUG SLEEP 0", "REPLICAOF 127.0.0.1 1", "SLAVEOF 127.0.0.1 1"):
            with pytest.raises(redis.exceptions.ResponseError, match="unknown command"):
                client.execute_command(command)
        assert set(DISABLED_COMMANDS) >= {"CONFIG", "MODULE", "DEBUG"}
        client.save()  # SAVE still works, but only into the server's own private folder
    assert not list(tmp_path.iterdir())


def test_the_password_is_not_on_the_command_line() -> None:
    with EmbeddedRedis() as server:
        assert server.proc is not None
        cmdline = Path(f"/proc/{server.proc.pid}/cmdline").read_bytes()
        assert server.password.encode() not in cmdline


def test_a_restart_with_the_same_password_keeps_the_url_valid() -> None:
    with EmbeddedRedis() as first:
        url, port, password = first.url, first.port, first.password
    with EmbeddedRedis(port=port, password=password) as second:
        assert second.url == url
        assert redis.Redis.from_url(url).ping()


def test_the_url_file_is_created_owner_only_even_under_a_permissive_umask(tmp_path: Path) -> None:
    settings = load_settings(home=str(tmp_path / "home"))
    old = os.umask(0)
    try:
        announce_embedded_redis(settings, "redis://:secret@127.0.0.1:1234/0")
    finally:
        os.umask(old)
    path = settings.run_dir / RUNNING_REDIS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.run_dir.stat().st_mode) == 0o700
    assert broker_url(settings) == "redis://:secret@127.0.0.1:1234/0"
    assert [p.name for p in settings.run_dir.iterdir()] == [RUNNING_REDIS_FILE]  # no temporary left
    announce_embedded_redis(settings, None)
    assert not path.exists()


def test_a_second_process_exiting_does_not_withdraw_the_first_ones_url(tmp_path: Path) -> None:
    """Issue 10.5: a second ``run`` on the same home deleted the first one's ``run/redis.url``."""
    home = tmp_path / "home"
    settings = load_settings(home=str(home))
    announce_embedded_redis(settings, "redis://:first@127.0.0.1:1111/0")
    path = settings.run_dir / RUNNING_REDIS_FILE
    other = (
        "from core.celery_app import announce_embedded_redis as a\n"
        "from core.settings import load_settings as l\n"
        f"a(l(home={str(home)!r}), None)\n"
    )
    subprocess.run([sys.executable, "-c", other], check=True, timeout=60, cwd=Path(__file__).parents[2])
    assert path.read_text() == "redis://:first@127.0.0.1:1111/0"
    # A file rewritten by someone else since is not this process's to remove either.
    path.write_text("redis://:second@127.0.0.1:2222/0")
    announce_embedded_redis(settings, None)
    assert path.read_text() == "redis://:second@127.0.0.1:2222/0"
