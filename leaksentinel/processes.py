"""Child processes of the embedded setup: the broker and the Celery workers.

Why here: ``run``, ``demo`` and the end-to-end tests start the very same processes the same way; in
the distributed setup the same workers run on other machines (``celery -A core.celery_app worker``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from typing import IO

from core.redis_embedded import die_with_parent
from core.settings import Settings, settings_env

__all__ = ["WorkerProcess", "stop_all"]


class WorkerProcess:
    """A Celery worker on the given queues, as a child process."""

    def __init__(
        self,
        settings: Settings,
        broker_url: str,
        *,
        queues: str = "notify,crawl",
        concurrency: int | None = None,
        name: str = "worker",
        log: IO[bytes] | None = None,
        loglevel: str = "WARNING",
    ) -> None:
        self.settings = settings
        self.broker_url = broker_url
        self.queues = queues
        self.concurrency = concurrency or settings.worker_concurrency
        self.name = name
        self.log = log
        self.loglevel = loglevel
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        env = {
            **os.environ,
            **settings_env(self.settings),
            "LEAKSENTINEL_REDIS_URL": self.broker_url,
            # Resolved here: the worker sees a Redis URL and would otherwise think it is distributed.
            "LEAKSENTINEL_ALLOW_PRIVATE_TARGETS": str(self.settings.private_targets_allowed).lower(),
            "PYTHONUNBUFFERED": "1",
        }
        cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "core.celery_app",
            "worker",
            "-Q",
            self.queues,
            "-c",
            str(self.concurrency),
            "-n",
            f"{self.name}-{os.getpid()}-{time.monotonic_ns()}@%h",
            "--loglevel",
            self.loglevel,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=self.log or subprocess.DEVNULL,
            stderr=self.log or subprocess.DEVNULL,
            preexec_fn=die_with_parent,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), as a crash would."""
        if self.proc is not None:
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def stop(self, timeout_s: float = 10.0) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL of the group if it lingers."""
        stop_all([self], timeout_s)


def stop_all(workers: list[WorkerProcess], timeout_s: float = 10.0) -> None:
    """Stop several workers at once: SIGTERM to every group, one shared wait, then SIGKILL what lingers.

    Why together: stopped one after the other, two pools would each take their full grace time and
    a service would overrun its 20 seconds.
    """
    procs: list[subprocess.Popen[bytes]] = []
    for worker in workers:
        proc, worker.proc = worker.proc, None
        if proc is None:
            continue
        procs.append(proc)
        if proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for proc in procs:
        with suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.0, deadline - time.monotonic()))
    for proc in procs:
        # The group, not just the main process: a pool child that outlived its parent is reaped too.
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    for proc in procs:
        with suppress(subprocess.TimeoutExpired):
            proc.wait(5)
