"""Prometheus metrics of every leaksentinel process: what each process did, and what the database says.

Two kinds of figures, two sources:

- **Process figures** (tasks run, deliveries by outcome, stored → delivered latency, bytes and seconds of
  detection, crawls fired) are counted where the work happens. The work happens in Celery pool children and
  in short-lived crawl subprocesses, so a role (``run``, ``worker``, ``scheduler``, ``serve``) gives its
  children a fresh directory for prometheus_client's multiprocess files (``PROMETHEUS_MULTIPROC_DIR``) and
  its exporter adds them up; the role's own figures stay in its memory and are merged in. Files of processes
  that have exited are folded into one archive file per kind at scrape time, so a day of crawl subprocesses
  does not leave thousands of files to read.
- **Database figures** (crawl runs, duration and bytes per source, postings stored, deliveries by status,
  outbox backlog, alerts) are facts of the shared database, read at scrape time: the same on every process
  that serves them, so one scrape of one process shows them for the whole fleet. Queue depths are read from
  the broker at scrape time.

Labels are bounded: source names (chosen by the operator), task names, channel kinds, outcomes, queues;
never tenant data. prometheus_client is imported lazily, so each process chooses memory or files when it
first counts: a role imports it for itself (memory) before it names the directory its children inherit.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.telemetry import MULTIPROC_ENV

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

    from core.db import Database

__all__ = [
    "CONTENT_TYPE",
    "DatabaseCollector",
    "Exporter",
    "MetricsDir",
    "ProcessCollector",
    "QueueCollector",
    "compact",
    "make_registry",
    "render",
]

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


# --- the multiprocess directory of a role's children ----------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class MetricsDir:
    """A fresh directory for the multiprocess files of one role's children, named in their environment.

    The role process imports prometheus_client *before* naming the directory, so its own figures stay
    in memory (and a test that starts a role in-process is not switched to files it will later delete).
    Directories of roles that died are removed when the next role starts.
    """

    def __init__(self, run_dir: Path, role: str) -> None:
        self.base = run_dir / "metrics"
        self.path = self.base / f"{role}-{os.getpid()}"
        self.previous: str | None = None
        self.active = False
        self.compacted_at = time.monotonic()

    def create(self) -> MetricsDir:
        import prometheus_client  # noqa: F401  (the role's own values: in memory, chosen now)

        self.base.mkdir(parents=True, exist_ok=True, mode=0o700)
        for old in self.base.iterdir():
            pid = old.name.rsplit("-", 1)[-1]
            if old.is_dir() and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                shutil.rmtree(old, ignore_errors=True)
        if self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(mode=0o700)
        self.previous = os.environ.get(MULTIPROC_ENV)
        os.environ[MULTIPROC_ENV] = str(self.path)
        self.active = True
        return self

    def compact_now_and_then(self, every_s: float = 60.0) -> None:
        """Fold exited processes' files once a minute: a role nobody scrapes keeps few files too."""
        if not self.active or time.monotonic() - self.compacted_at < every_s:
            return
        self.compacted_at = time.monotonic()
        try:
            with _COLLECT_LOCK:
                compact(str(self.path))
        except Exception as exc:
            log.warning("metrics: could not compact %s: %s", self.path, exc)

    def close(self) -> None:
        """Stop naming the directory (children are gone); it is removed by the next role on this home."""
        if not self.active:
            return
        self.active = False
        if os.environ.get(MULTIPROC_ENV) == str(self.path):
            if self.previous is None:
                os.environ.pop(MULTIPROC_ENV, None)
            else:
                os.environ[MULTIPROC_ENV] = self.previous
        if not _this_process_uses_files():
            shutil.rmtree(self.path, ignore_errors=True)


def _this_process_uses_files() -> bool:
    from prometheus_client import values

    return bool(getattr(values.ValueClass, "_multiprocess", False))


def compact(path: str) -> int:
    """Fold the counter and histogram files of exited processes into one archive per kind; returns how many.

    Their values are summed key by key (histogram buckets are stored per bucket, not cumulated), which is
    exactly what the collector would add up from the separate files.
    """
    from prometheus_client.mmap_dict import MmapedDict

    folded = 0
    for kind in ("counter", "histogram"):
        dead: list[str] = []
        for name in glob.glob(os.path.join(path, f"{kind}_*.db")):
            pid = os.path.basename(name)[len(kind) + 1 : -3]
            if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                dead.append(name)
        if not dead:
            continue
        archive = MmapedDict(os.path.join(path, f"{kind}_archive.db"))
        try:
            for name in dead:
                for key, value, timestamp, _pos in MmapedDict.read_all_values_from_file(name):
                    current, _ts = archive.read_value(key)
                    archive.write_value(key, current + value, timestamp)
                os.unlink(name)
                folded += 1
        finally:
            archive.close()
    return folded


# --- collectors ------------------------------------------------------------------------------------------


_COLLECT_LOCK = threading.Lock()


class ProcessCollector:
    """This process's figures (in memory) merged with its children's (multiprocess files), one family each."""

    def __init__(self, multiproc_dir: str | None = None) -> None:
        self.dir = multiproc_dir if multiproc_dir is not None else os.environ.get(MULTIPROC_ENV)

    def collect(self) -> Iterator[Metric]:
        from prometheus_client import REGISTRY
        from prometheus_client.metrics_core import Metric
        from prometheus_client.multiprocess import MultiProcessCollector

        sources: list[Iterable[Metric]] = []
        with _COLLECT_LOCK:  # the API and the exporter of one `run` may scrape at once
            if self.dir and os.path.isdir(self.dir):
                try:
                    compact(self.dir)
                except Exception as exc:
                    log.warning("metrics: could not compact %s: %s", self.dir, exc)
                sources.append(list(MultiProcessCollector(None, path=self.dir).collect()))
            if not _this_process_uses_files() or not self.dir:
                sources.append(list(REGISTRY.collect()))
        families: dict[str, Metric] = {}
        values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
        for source in sources:
            for fam in source:
                if fam.name not in families:
                    families[fam.name] = Metric(fam.name, fam.documentation, fam.type, fam.unit)
                    values[fam.name] = {}
                merged = values[fam.name]
                for s in fam.samples:
                    if s.name.endswith("_created"):  # per-process creation times do not add up
                        continue
                    key = (s.name, tuple(sorted(s.labels.items())))
                    merged[key] = merged.get(key, 0.0) + s.value
        for name, fam in families.items():
            for (sample, labels), value in values[name].items():
                fam.add_sample(sample, dict(labels), value)
            yield fam


class QueueCollector:
    """Tasks waiting in each broker queue, read at scrape time."""

    def __init__(self, depths: Callable[[], dict[str, int]] | dict[str, int] | None) -> None:
        self.depths = depths

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        if self.depths is None:
            return
        depths = self.depths() if callable(self.depths) else self.depths
        fam = GaugeMetricFamily(
            "leaksentinel_queue_depth", "Tasks waiting in each broker queue.", labels=["queue"]
        )
        for queue, depth in sorted(depths.items()):
            fam.add_metric([queue], depth)
        yield fam


class DatabaseCollector:
    """Facts of the shared database, read at scrape time (the same from every process that serves them)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
        from sqlalchemy import case, func, select

        from core.models import Alert, CrawlJob, Delivery, Source, utcnow
        from crawlers.health import is_stale

        now = utcnow()
        finished = CrawlJob.status != "running"
        with self.db.read_session() as sess:
            sources = sess.scalars(select(Source).where(Source.kind.not_in(("local", "tips")))).all()
            per_source = {
                row[0]: row[1:]
                for row in sess.execute(
                    select(
                        CrawlJob.source_id,
                        func.count(),
                        func.sum(case((CrawlJob.status == "failed", 1), else_=0)),
                        func.sum(func.coalesce(CrawlJob.stats["seconds"].as_float(), 0.0)),
                        func.sum(func.coalesce(CrawlJob.stats["bytes"].as_float(), 0.0)),
                        func.sum(func.coalesce(CrawlJob.stats["new"].as_float(), 0.0)),
                        func.sum(func.coalesce(CrawlJob.stats["postings"].as_float(), 0.0)),
                    )
                    .where(finished)
                    .group_by(CrawlJob.source_id)
                ).all()
            }
            last_ids = select(func.max(CrawlJob.id)).where(finished).group_by(CrawlJob.source_id)
            last = {
                job.source_id: job for job in sess.scalars(select(CrawlJob).where(CrawlJob.id.in_(last_ids)))
            }
            running = dict(
                sess.execute(
                    select(CrawlJob.source_id, func.count())
                    .where(CrawlJob.status == "running")
                    .group_by(CrawlJob.source_id)
                ).all()
            )
            deliveries = dict(
                sess.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
            )
            attempts = int(sess.scalar(select(func.coalesce(func.sum(Delivery.attempts), 0))) or 0)
            oldest = sess.scalar(
                select(func.min(Delivery.created_at)).where(Delivery.status.in_(("pending", "queued")))
            )
            alerts = dict(sess.execute(select(Alert.status, func.count()).group_by(Alert.status)).all())

        def counter(name: str, doc: str, labels: list[str] | None = None) -> Any:
            return CounterMetricFamily(name, doc, labels=labels)

        runs = counter("leaksentinel_crawl_runs", "Finished crawl runs per source.", ["source"])
        failures = counter("leaksentinel_crawl_failures", "Failed crawl runs per source.", ["source"])
        seconds = counter("leaksentinel_crawl_seconds", "Seconds spent crawling, per source.", ["source"])
        nbytes = counter("leaksentinel_crawl_bytes", "Bytes fetched by crawls, per source.", ["source"])
        postings = counter(
            "leaksentinel_postings", "Postings stored for the first time by crawls, per source.", ["source"]
        )
        seen = counter(
            "leaksentinel_postings_seen", "Postings read by crawls (new or not), per source.", ["source"]
        )
        last_s = GaugeMetricFamily(
            "leaksentinel_crawl_last_duration_seconds",
            "Duration of the last finished crawl.",
            labels=["source"],
        )
        last_b = GaugeMetricFamily(
            "leaksentinel_crawl_last_bytes", "Bytes fetched by the last finished crawl.", labels=["source"]
        )
        run_g = GaugeMetricFamily("leaksentinel_crawls_running", "Crawls running now.", labels=["source"])
        stale = GaugeMetricFamily(
            "leaksentinel_source_staleness_seconds",
            "Seconds since the source last succeeded.",
            labels=["source"],
        )
        healthy = GaugeMetricFamily(
            "leaksentinel_source_healthy", "1 when the source is healthy, 0 when not.", labels=["source"]
        )
        for s in sources:
            n, failed, secs, byts, new, read = per_source.get(s.id, (0, 0, 0.0, 0.0, 0.0, 0.0))
            label = [s.name]
            runs.add_metric(label, int(n or 0))
            failures.add_metric(label, int(failed or 0))
            seconds.add_metric(label, float(secs or 0.0))
            nbytes.add_metric(label, float(byts or 0.0))
            postings.add_metric(label, float(new or 0.0))
            seen.add_metric(label, float(read or 0.0))
            job = last.get(s.id)
            if job is not None:
                stats = job.stats or {}
                last_s.add_metric(label, _number(stats.get("seconds")))
                last_b.add_metric(label, _number(stats.get("bytes")))
            run_g.add_metric(label, int(running.get(s.id, 0)))
            since = s.last_success or s.created_at
            stale.add_metric(label, round((now - since).total_seconds(), 1))
            bad = s.health == "unhealthy" or is_stale(
                s.schedule, s.enabled, s.last_success, s.created_at, now
            )
            healthy.add_metric(label, 0 if bad else 1)
        yield from (runs, failures, seconds, nbytes, postings, seen, last_s, last_b, run_g, stale, healthy)

        by_status = GaugeMetricFamily(
            "leaksentinel_outbox_rows",
            "Outbox rows by status (dead: the dead-letter list).",
            labels=["status"],
        )
        for status in ("pending", "queued", "sent", "dead"):
            by_status.add_metric([status], int(deliveries.get(status, 0)))
        yield by_status
        backlog = GaugeMetricFamily(
            "leaksentinel_outbox_backlog",
            "Outbox rows not delivered yet (pending or queued, retries included).",
        )
        backlog.add_metric([], int(deliveries.get("pending", 0)) + int(deliveries.get("queued", 0)))
        yield backlog
        age = GaugeMetricFamily(
            "leaksentinel_outbox_oldest_age_seconds",
            "Age of the oldest outbox row not delivered yet (0: none).",
        )
        age.add_metric([], round((now - oldest).total_seconds(), 3) if oldest is not None else 0.0)
        yield age
        tried = counter("leaksentinel_delivery_attempts", "Delivery attempts recorded in the outbox.")
        tried.add_metric([], attempts)
        yield tried
        by_alert = GaugeMetricFamily("leaksentinel_alerts", "Alerts by status.", labels=["status"])
        for status in ("new", "acked", "resolved", "false_positive"):
            by_alert.add_metric([status], int(alerts.get(status, 0)))
        yield by_alert


def _number(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def make_registry(
    *,
    db: Database | None = None,
    queue_depths: Callable[[], dict[str, int]] | dict[str, int] | None = None,
    process: bool = True,
) -> CollectorRegistry:
    """What one exporter serves: process figures, broker queue depths, database figures (each optional)."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    if process:
        registry.register(ProcessCollector())
    if queue_depths is not None:
        registry.register(QueueCollector(queue_depths))
    if db is not None:
        registry.register(DatabaseCollector(db))
    return registry


def render(registry: CollectorRegistry) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry).decode("utf-8")


class Exporter:
    """prometheus_client's own HTTP server for a role that has no API (``worker``, ``scheduler``)."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self.registry, self.host, self.port = registry, host, port
        self.server: Any = None
        self.thread: threading.Thread | None = None

    def start(self) -> Exporter:
        from prometheus_client import start_http_server

        from core.errors import OperationalError

        try:
            self.server, self.thread = start_http_server(self.port, addr=self.host, registry=self.registry)
        except OSError as exc:
            raise OperationalError(
                f"metrics: could not listen on {self.host}:{self.port} ({exc.strerror or exc}); "
                "choose another --metrics-port"
            ) from None
        self.port = int(self.server.server_address[1])
        log.info("metrics on http://%s:%s/metrics", self.host, self.port)
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        if self.server is None:
            return
        server, self.server = self.server, None
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        stopper.join(timeout_s)
        server.server_close()
        if self.thread is not None:
            self.thread.join(max(0.0, timeout_s - 0.5))
