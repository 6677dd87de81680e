"""Every setting leaksentinel reads, with its default, in one place.

Why one place: the embedded default and the distributed setup run the same code and differ only in
the URLs set here. Precedence, lowest first: defaults < TOML file (``--config`` or
``$LEAKSENTINEL_HOME/config.toml``) < ``LEAKSENTINEL_*`` environment variables.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from core.errors import BadInput

__all__ = ["CHROMIUM_ARGS", "Settings", "default_home", "load_settings", "settings_env"]

ENV_PREFIX = "LEAKSENTINEL_"

#: Flags for the system Chromium on a closed network: no sandbox needs (root in CI), no GPU, and none of
#: the background connections that a machine without internet refuses by the dozen.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def default_home() -> Path:
    """``$LEAKSENTINEL_HOME`` or ``~/.local/share/leaksentinel``."""
    env = os.environ.get(ENV_PREFIX + "HOME")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".local" / "share" / "leaksentinel"


@dataclass(frozen=True)
class Settings:
    """Resolved configuration; a value object passed down, never a global."""

    home: Path = field(default_factory=default_home)
    #: SQLAlchemy URL; empty means a SQLite file in the home.
    database_url: str = ""
    #: Redis URL for broker, schedule and locks; empty means a private embedded redis-server.
    redis_url: str = ""
    #: Elasticsearch URL; empty means a tantivy index in the home.
    search_url: str = ""
    #: Which search backend: "auto" (Elasticsearch when ``search_url`` is set, else PostgreSQL full text when
    #: ``database_url`` is PostgreSQL, so every machine of a fleet searches every posting, else tantivy in the
    #: home), or "tantivy", "postgres", "elasticsearch". After switching, run ``leaksentinel reindex``.
    search_backend: str = "auto"
    #: Where the console's session-signing secret lives (empty: ``console.secret`` in the home). Point every
    #: front machine of a fleet at the same file so each accepts the others' session cookies.
    console_secret_file: str = ""
    #: Whether subscriptions and crawls may target loopback/private networks. None: allowed only in the
    #: embedded default (no server URLs configured).
    allow_private_targets: bool | None = None
    #: Private networks the crawler and webhooks may reach even when private targets are not allowed
    #: (comma-separated CIDRs, e.g. a Tor bridge "127.0.0.1/32"), and networks refused even when they are.
    crawl_allow_networks: str = ""
    crawl_block_networks: str = ""
    #: Where the key that seals webhook and proxy secrets lives (empty: ``secrets.key`` in the home). Copy the
    #: file to every machine of a fleet, like ``hash.key``.
    secrets_key_file: str = ""
    #: Where the deployment's hashing key lives (empty: ``hash.key`` in the home). In a fleet, point every
    #: machine at the same key (``LEAKSENTINEL_HASH_KEY_FILE``, or this setting in config.toml).
    hash_key_file: str = ""
    #: Where raw fetched bytes (evidence) are kept (empty: ``evidence/`` in the home). In a fleet, a directory
    #: every machine mounts (NFS, a shared volume), so any machine can export any alert's evidence.
    evidence_path: str = ""
    #: Evidence in an S3-compatible bucket instead of a directory: ``s3://BUCKET[/PREFIX]`` (empty: the
    #: directory above). Same keys as the directory (core.evidence_store), so ``aws s3 sync evidence/
    #: s3://BUCKET/PREFIX/`` moves existing evidence. Needs the ``s3`` extra (boto3). Checked when settings
    #: load: a malformed URL, or both ``evidence_path`` and ``evidence_url``, is an error at start.
    evidence_url: str = ""
    #: The S3-compatible server (MinIO, Ceph, ...: ``http(s)://HOST:PORT``; empty: AWS S3). Path-style
    #: addressing is used with an endpoint URL.
    evidence_s3_endpoint_url: str = ""
    #: The bucket's region (empty: boto3's own resolution, ``AWS_REGION``/``AWS_DEFAULT_REGION``, else us-east-1).
    evidence_s3_region: str = ""
    #: An AWS shared-credentials file (INI, ``[default]`` or ``AWS_PROFILE``'s section) to read the bucket's
    #: credentials from. Empty: the standard chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
    #: ``~/.aws/credentials``, an instance or pod role). Credentials themselves are never a setting: they are
    #: not stored in the database nor printed.
    evidence_s3_credentials_file: str = ""
    #: Base URL of the console as users reach it (behind a proxy: the proxy's URL), put into alert messages
    #: and emails as links. Empty: what `run` listens on (http://HOST:PORT).
    public_url: str = ""
    #: `run`'s log lines: "text" for people, "json" (one object per line) for log shippers.
    log_format: str = "text"
    # SMTP for the email channel.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: str = "auto"
    smtp_ssl: bool = False
    smtp_sender: str = "leaksentinel@localhost"
    # Operator alerts (unhealthy or recovered sources): a signed webhook and/or an email address.
    operator_webhook: str = ""
    operator_webhook_secret: str = ""
    operator_email: str = ""
    # Delivery.
    #: With the backoff below (full jitter), 18 attempts span about 27 minutes on average, and less than ten
    #: minutes about once in ten thousand dead letters: a receiver down for ten minutes loses nothing.
    delivery_max_attempts: int = 18
    delivery_backoff_base_s: float = 2.0
    delivery_backoff_max_s: float = 300.0
    #: Redis visibility timeout; every retry delay stays below it (a longer ETA re-runs the task in a loop).
    broker_visibility_timeout_s: int = 3600
    relay_interval_s: float = 0.5
    #: A delivery queued but not acknowledged for this long is handed to the broker again.
    relay_requeue_after_s: float = 120.0
    # Crawling.
    crawl_timeout_s: int = 600
    crawl_max_response_bytes: int = 20_000_000
    crawl_user_agent: str = "leaksentinel/0.1 (+https://github.com/leaksentinel)"
    chromium_path: str = "/usr/bin/chromium"
    scheduler_tick_s: float = 1.0
    #: Failed runs in a row after which a source is marked unhealthy (and the operators are told).
    unhealthy_after_failures: int = 3
    #: Spread sources on the same interval over up to 10% of it (30 s at most).
    schedule_jitter: bool = True
    #: A crawl stores its postings in batches (pipelines.store): a batch is stored once it holds this many
    #: postings or bytes, or once its first posting has waited this long (the most an alert is delayed).
    store_batch: int = 32
    store_batch_bytes: int = 2_000_000
    store_batch_wait_s: float = 0.25
    #: A crawl detects its postings in batches too (pipelines.detect): back to back, the detector's tables
    #: stay in the CPU's caches. A batch runs once it holds this many postings, or once its first has waited
    #: this long.
    detect_batch: int = 16
    detect_batch_wait_s: float = 0.05
    # Detection.
    max_posting_bytes: int = 50_000_000
    #: Posting text and search entries older than this are deleted by ``purge`` unless an alert holds them.
    retention_days: int = 180
    #: How often the scheduler leader runs ``purge`` (0 turns the automatic purge off).
    purge_every_s: float = 86400.0
    #: A YARA watch, when added, is run over the stored postings (newest first) up to these bounds: postings,
    #: bytes of text, and seconds (keep below ``broker_visibility_timeout_s``: a longer task is handed out again).
    yara_retro_max_postings: int = 100_000
    yara_retro_max_bytes: int = 2_000_000_000
    yara_retro_seconds: float = 900.0
    #: With no worker to hand the hunt to (the CLI on a home where ``run`` is not up), it runs in the
    #: foreground for at most this long.
    yara_retro_inline_seconds: float = 60.0
    # Service.
    host: str = "127.0.0.1"
    port: int = 8000
    worker_concurrency: int = 2
    #: Processes of `run`'s delivery pool (apart from the crawl pool, so an alert never waits behind a crawl).
    notify_concurrency: int = 2
    #: Serve /metrics without an API key (for a Prometheus on a trusted network).
    metrics_public: bool = False
    #: Port of the Prometheus exporter of ``worker``, ``scheduler`` and ``run`` (0: none; ``--metrics-port``).
    metrics_port: int = 0
    #: Address that exporter listens on: loopback by default; a fleet's scraper needs a reachable one.
    metrics_host: str = "127.0.0.1"
    api_rate_per_s: float = 20.0
    api_burst: int = 60
    api_max_body_bytes: int = 20_000_000

    @property
    def console_url(self) -> str:
        """The base of every link to the console (``public_url``, else what ``run`` listens on)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def sqlite_path(self) -> Path:
        return self.home / "leaksentinel.db"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path}"

    @property
    def embedded(self) -> bool:
        """True when no server URL is configured: the laptop setup."""
        return not (self.database_url or self.redis_url or self.search_url)

    @property
    def private_targets_allowed(self) -> bool:
        if self.allow_private_targets is not None:
            return self.allow_private_targets
        return self.embedded

    @property
    def key_path(self) -> Path:
        if self.hash_key_file:
            return Path(self.hash_key_file).expanduser()
        return self.home / "hash.key"

    @property
    def evidence_dir(self) -> Path:
        if self.evidence_path:
            return Path(self.evidence_path).expanduser()
        return self.home / "evidence"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    def with_(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _coerce(name: str, raw: Any, target: Any) -> Any:
    """Convert a TOML or environment value to the type of the field's default."""
    kind = target if isinstance(target, type) else type(target)
    if name == "home":
        return Path(str(raw)).expanduser()
    if name == "allow_private_targets":
        if raw is None or raw == "":
            return None
        return _to_bool(name, raw)
    if kind is bool:
        return _to_bool(name, raw)
    try:
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
    except (TypeError, ValueError):
        raise BadInput(f"setting {name}: expected a number, got {raw!r}") from None
    return str(raw)


def _to_bool(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise BadInput(f"setting {name}: expected true/false, got {raw!r}")


def load_settings(
    config: Path | None = None, environ: dict[str, str] | None = None, **overrides: Any
) -> Settings:
    """Build the settings from defaults, the TOML file, the environment and explicit overrides."""
    env = os.environ if environ is None else environ
    defaults = Settings(
        home=Path(env[ENV_PREFIX + "HOME"]).expanduser() if env.get(ENV_PREFIX + "HOME") else default_home()
    )
    known = {f.name: f for f in fields(Settings)}
    values: dict[str, Any] = {}

    path = config or (Path(env[ENV_PREFIX + "CONFIG"]) if env.get(ENV_PREFIX + "CONFIG") else None)
    if path is None and (defaults.home / "config.toml").is_file():
        path = defaults.home / "config.toml"
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BadInput(f"config file not found: {path}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise BadInput(f"config file {path} is not valid TOML: {exc}") from None
        section = data.get("leaksentinel", data)
        for key, raw in section.items():
            if key not in known:
                raise BadInput(f"config file {path}: unknown setting {key!r}")
            values[key] = _coerce(key, raw, getattr(defaults, key))

    for key in known:
        env_key = ENV_PREFIX + key.upper()
        if env_key in env and key != "home":
            values[key] = _coerce(key, env[env_key], getattr(defaults, key))
    for key, raw in overrides.items():
        if raw is not None:
            values[key] = _coerce(key, raw, getattr(defaults, key))
    if "home" not in values:
        values["home"] = defaults.home
    settings = Settings(**values)
    from core.evidence_store import validate_evidence_settings  # imports no settings at module level

    validate_evidence_settings(settings)
    return settings


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``LEAKSENTINEL_*`` variables that make a child process load these same settings."""
    env: dict[str, str] = {}
    for f in fields(Settings):
        value = getattr(settings, f.name)
        if value is None:
            continue
        env[ENV_PREFIX + f.name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    return env
