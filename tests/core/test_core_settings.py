"""Settings: defaults < TOML file < environment < explicit overrides; bad values are BadInput."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import BadInput
from core.settings import Settings, load_settings, settings_env


def test_defaults_live_in_the_home(tmp_path: Path) -> None:
    s = load_settings(environ={"LEAKSENTINEL_HOME": str(tmp_path)})
    assert s.home == tmp_path
    assert s.effective_database_url == f"sqlite:///{tmp_path / 'leaksentinel.db'}"
    assert s.embedded and s.private_targets_allowed
    assert s.key_path.parent == tmp_path


def test_precedence_toml_then_environment_then_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[leaksentinel]\nsmtp_port = 2525\nsmtp_host = "mail.example"\ndelivery_max_attempts = 3\n'
    )
    env = {"LEAKSENTINEL_HOME": str(tmp_path), "LEAKSENTINEL_SMTP_PORT": "2626"}
    s = load_settings(cfg, environ=env, delivery_max_attempts=5)
    assert (s.smtp_host, s.smtp_port, s.delivery_max_attempts) == ("mail.example", 2626, 5)


def test_home_config_toml_is_read(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('redis_url = "redis://10.0.0.1:6379/0"\n')
    s = load_settings(environ={"LEAKSENTINEL_HOME": str(tmp_path)})
    assert s.redis_url == "redis://10.0.0.1:6379/0"
    assert not s.embedded and not s.private_targets_allowed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("smtp_port = 'x'", "expected a number"),
        ("nonsense = 1", "unknown setting"),
        ("= broken", "not valid TOML"),
    ],
)
def test_bad_config_is_bad_input(tmp_path: Path, text: str, message: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(BadInput, match=message):
        load_settings(cfg, environ={"LEAKSENTINEL_HOME": str(tmp_path)})


def test_missing_config_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_settings_env_round_trips(tmp_path: Path) -> None:
    s = load_settings(
        environ={"LEAKSENTINEL_HOME": str(tmp_path)}, smtp_port=2525, allow_private_targets=False
    )
    again = load_settings(environ=settings_env(s))
    assert again == s
    assert isinstance(Settings().home, Path)


def test_links_follow_public_url_else_what_run_listens_on() -> None:
    from core.settings import Settings

    assert Settings().console_url == "http://127.0.0.1:8000"
    assert Settings(host="0.0.0.0", port=9100).console_url == "http://0.0.0.0:9100"
    assert Settings(host="::1", port=9100).console_url == "http://[::1]:9100"
    behind_proxy = Settings(host="127.0.0.1", port=9100, public_url="https://leaks.example.com/")
    assert behind_proxy.console_url == "https://leaks.example.com"
