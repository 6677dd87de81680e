"""Secrets at rest: the database holds webhook secrets and proxy credentials only sealed, the key lives
beside hash.key (0600), and a copied database without the key gives nothing away."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import select, text

from core.db import _MIGRATIONS, Database, open_database
from core.models import Source, Subscription, Tenant
from core.secretbox import PREFIX, SecretBox, SecretKeyError, mask_url_credentials, secrets_key_path
from core.settings import load_settings

SECRET = "whsec-0123456789-do-not-leak"
PROXY = "http://crawler:pr0xy-pass@127.0.0.1:3128"


def _add_rows(db: Database) -> None:
    with db.session() as sess:
        tenant = Tenant(name="acme")
        sess.add(tenant)
        sess.flush()
        sess.add(
            Subscription(tenant_id=tenant.id, channel="webhook", target="http://127.0.0.1:9/h", secret=SECRET)
        )
        sess.add(Source(name="pastes", kind="pastebin", url="http://127.0.0.1:9/", proxy=PROXY))


def _raw(db: Database) -> tuple[str, str]:
    with db.engine.connect() as conn:
        secret = conn.execute(text("SELECT secret FROM subscriptions")).scalar_one()
        proxy = conn.execute(text("SELECT proxy FROM sources")).scalar_one()
    return str(secret), str(proxy)


def test_the_database_holds_secrets_sealed_and_the_code_reads_them_clear(database_url: str) -> None:
    settings = load_settings()
    db = open_database(settings)
    _add_rows(db)
    raw_secret, raw_proxy = _raw(db)
    for raw, clear in ((raw_secret, SECRET), (raw_proxy, PROXY)):
        assert raw.startswith(PREFIX)
        assert clear not in raw and "pr0xy-pass" not in raw and "do-not-leak" not in raw
    with db.session() as sess:
        assert sess.scalars(select(Subscription.secret)).one() == SECRET
        assert sess.scalars(select(Source.proxy)).one() == PROXY
    key = secrets_key_path(settings.home)
    assert key == settings.key_path.with_name("secrets.key")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


@pytest.mark.sqlite_only("copies the database file as a thief would; PostgreSQL stores the same sealed text")
def test_a_copied_database_without_the_key_gives_nothing_away(tmp_path: Path) -> None:
    settings = load_settings()
    _add_rows(open_database(settings))
    thief_home = tmp_path / "thief"
    # Everything but the keys: the database with its WAL, as a backup or a stolen disk image has it.
    shutil.copytree(settings.home, thief_home, ignore=shutil.ignore_patterns("*.key"))
    copied = [p for p in thief_home.rglob("leaksentinel.db*") if p.is_file()]
    assert copied
    for path in copied:
        blob = path.read_bytes()
        assert SECRET.encode() not in blob and b"pr0xy-pass" not in blob
    thief = open_database(load_settings(home=str(thief_home)))
    with thief.session() as sess, pytest.raises(SecretKeyError, match=r"secrets\.key is missing"):
        sess.scalars(select(Subscription.secret)).one()
    # Another deployment's key is named as such, not taken for damage.
    SecretBox(thief_home / "secrets.key").seal("x")
    with thief.session() as sess, pytest.raises(SecretKeyError, match="sealed with key"):
        sess.scalars(select(Subscription.secret)).one()


def test_a_tampered_value_does_not_open(tmp_path: Path) -> None:
    box = SecretBox(tmp_path / "secrets.key")
    sealed = box.seal(SECRET)
    assert box.open(sealed) == SECRET
    assert box.seal(SECRET) != sealed  # random nonce: equal secrets do not show as equal
    flipped = sealed[:-3] + ("A" if sealed[-3] != "A" else "B") + sealed[-2:]
    with pytest.raises(SecretKeyError, match="damaged"):
        box.open(flipped)
    with pytest.raises(SecretKeyError, match="damaged"):
        box.open(sealed.split(":")[0] + ":v1:" + sealed.split(":")[2] + ":!!notbase64!!")


@pytest.mark.empty_database
def test_the_migration_seals_secrets_written_in_clear_by_the_previous_version(database_url: str) -> None:
    settings = load_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    url = settings.effective_database_url
    old = Database(url, secrets_key=secrets_key_path(settings.home))
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    with old.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004")
    with old.engine.begin() as conn:  # rows as the previous version wrote them
        conn.execute(
            text(
                "INSERT INTO tenants (id, name, regions, settings, created_at) "
                "VALUES (1, 'acme', '[]', '{}', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO subscriptions (tenant_id, channel, target, secret, min_severity, "
                "enabled, created_at) VALUES (1, 'webhook', 'http://x/h', :s, 'low', true, "
                "CURRENT_TIMESTAMP)"
            ),
            {"s": SECRET},
        )
        conn.execute(
            text(
                "INSERT INTO sources (name, kind, url, proxy, enabled, render, options, cursor, "
                "health, failures_in_row, created_at) VALUES ('p', 'pastebin', 'http://x/', :p, "
                "true, false, '{}', '{}', 'unknown', 0, CURRENT_TIMESTAMP)"
            ),
            {"p": PROXY},
        )
    old.dispose()
    db = open_database(settings)  # what the next command does: migrate to head
    raw_secret, raw_proxy = _raw(db)
    assert raw_secret.startswith(PREFIX) and raw_proxy.startswith(PREFIX)
    assert SECRET not in raw_secret and PROXY not in raw_proxy
    with db.session() as sess:
        assert sess.scalars(select(Subscription.secret)).one() == SECRET
        assert sess.scalars(select(Source.proxy)).one() == PROXY
    # A long secret fits once sealed (the column was VARCHAR(256)).
    with db.session() as sess:
        sess.scalars(select(Subscription)).one().secret = "s" * 256
    with db.session() as sess:
        assert sess.scalars(select(Subscription.secret)).one() == "s" * 256


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (PROXY, "http://crawler:***@127.0.0.1:3128"),
        ("socks5://:pw@10.0.0.1:1080", "socks5://***@10.0.0.1:1080"),
        ("http://10.0.0.1:3128", "http://10.0.0.1:3128"),
        ("http://a:b@c@10.0.0.1:1", "http://a:***@10.0.0.1:1"),
        ("http://u:p@[::1", "***"),
        (None, None),
    ],
)
def test_proxy_credentials_can_be_masked_for_non_operators(url: str | None, shown: str | None) -> None:
    assert mask_url_credentials(url) == shown
