from __future__ import annotations

import os
import stat
from datetime import time
from pathlib import Path

import pytest

from resywatch.config import (
    DEFAULT_RESY_API_KEY,
    MANHATTAN,
    default_config_path,
    load_settings,
)
from resywatch.errors import ConfigError, ExitCode


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_follow_the_design() -> None:
    settings = load_settings(environ={})
    assert settings.discovery_days == 14
    assert settings.discovery_time_slots == [time(15), time(19)]
    assert settings.discovery_window_hours == 2
    assert settings.discovery_party_sizes == [2, 4]
    assert settings.discovery_bounding_box == MANHATTAN
    assert settings.discovery_concurrency == 8
    assert settings.discovery_interval_s == 30
    assert settings.timezone == "America/New_York"
    assert settings.resy_base_url == "https://api.resy.com"
    assert settings.notify_urls == []
    assert settings.uses_default_database
    assert settings.effective_database_url.endswith("/resywatch/resywatch.db")


def test_precedence_defaults_file_env_flags(tmp_path: Path) -> None:
    config = write(
        tmp_path / "c.toml",
        '[database]\nurl = "sqlite:///from-file.db"\n[discovery]\ndays = 7\nconcurrency = 3\n'
        '[general]\ntimezone = "Europe/Paris"\n',
    )
    env = {"RESYWATCH_DISCOVERY_DAYS": "5", "RESYWATCH_DATABASE_URL": "sqlite:///from-env.db"}
    settings = load_settings(
        config_path=config, environ=env, flags={"database_url": "sqlite:///from-flag.db"}
    )
    assert settings.database_url == "sqlite:///from-flag.db"  # flag beats env
    assert settings.discovery_days == 5  # env beats file
    assert settings.discovery_concurrency == 3  # file beats default
    assert settings.timezone == "Europe/Paris"
    assert settings.discovery_window_hours == 2  # default


def test_config_file_named_by_environment(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", "[discovery]\nwindow_hours = 3\n")
    assert load_settings(environ={"RESYWATCH_CONFIG": str(config)}).discovery_window_hours == 3


def test_default_config_file_is_read_when_present(tmp_path: Path) -> None:
    path = default_config_path()
    path.parent.mkdir(parents=True)
    write(path, '[resy]\napi_key = "key-from-default-file"\n')
    settings = load_settings()
    assert settings.resy_api_key is not None
    assert settings.resy_api_key.get_secret_value() == "key-from-default-file"


def test_lists_parse_from_env_and_toml(tmp_path: Path) -> None:
    env = {
        "RESYWATCH_DISCOVERY_PARTY_SIZES": "2, 3,6",
        "RESYWATCH_DISCOVERY_TIME_SLOTS": "12:00,20:30",
        "RESYWATCH_DISCOVERY_BOUNDING_BOX": "40.6,-74.1,40.9,-73.8",
        "RESYWATCH_NOTIFY_URLS": "ntfy://topic json://localhost/hook,mailto://u@x?to=a,b",
    }
    settings = load_settings(environ=env)
    assert settings.discovery_party_sizes == [2, 3, 6]
    assert settings.discovery_time_slots == [time(12), time(20, 30)]
    assert settings.discovery_bounding_box == (40.6, -74.1, 40.9, -73.8)
    assert settings.notify_urls == ["ntfy://topic", "json://localhost/hook", "mailto://u@x?to=a,b"]

    config = write(
        tmp_path / "c.toml", '[discovery]\nparty_sizes = [1, 8]\ntime_slots = ["18:00"]\n'
    )
    settings = load_settings(config_path=config, environ={})
    assert settings.discovery_party_sizes == [1, 8]
    assert settings.discovery_time_slots == [time(18)]


def test_postgres_urls_use_psycopg() -> None:
    settings = load_settings(environ={"RESYWATCH_DATABASE_URL": "postgresql://u:p@h/db"})
    assert settings.database_url == "postgresql+psycopg://u:p@h/db"
    assert not settings.uses_default_database


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("RESYWATCH_DATABASE_URL", "nonsense", "not a supported database URL"),
        ("RESYWATCH_DISCOVERY_DAYS", "many", "valid integer"),
        ("RESYWATCH_DISCOVERY_DAYS", "0", "greater than or equal to 1"),
        ("RESYWATCH_DISCOVERY_TIME_SLOTS", "7pm", "HH:MM"),
        ("RESYWATCH_DISCOVERY_TIME_SLOTS", "25:00", "hour must be in 0..23"),
        ("RESYWATCH_DISCOVERY_PARTY_SIZES", "2,0", "greater than or equal to 1"),
        ("RESYWATCH_DISCOVERY_BOUNDING_BOX", "1,2,3", "four numbers"),
        ("RESYWATCH_DISCOVERY_BOUNDING_BOX", "41,-74,40,-73", "south < north"),
        ("RESYWATCH_TIMEZONE", "Mars/Olympus", "unknown time zone"),
        ("RESYWATCH_RESY_BASE_URL", "ftp://x", "should match pattern"),
    ],
)
def test_bad_environment_values_name_the_variable(
    variable: str, value: str, complaint: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(environ={variable: value})
    assert raised.value.exit_code == ExitCode.USAGE
    assert f"invalid value for {variable}:" in str(raised.value)
    assert complaint in str(raised.value)


def test_bad_flag_value_names_the_flag() -> None:
    with pytest.raises(ConfigError, match="--database-url"):
        load_settings(environ={}, flags={"database_url": "mysql://x"})


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("[discovery\n", "is not valid TOML"),
        ("[discovery]\ndays = 'x'\n", "[discovery] days: Input should be a valid integer"),
        ("[discovery]\ndayz = 3\n", "unknown key [discovery] dayz"),
        ("[general]\nresy_api_key = 'k'\n", "unknown key [general] resy_api_key"),
        ("[nope]\nx = 1\n", "unknown section [nope]"),
        ("days = 3\n", "unknown section [days]"),
    ],
)
def test_bad_config_file_names_file_and_key(tmp_path: Path, text: str, complaint: str) -> None:
    config = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as raised:
        load_settings(config_path=config, environ={})
    assert str(config) in str(raised.value)
    assert complaint in str(raised.value)


def test_a_named_config_file_that_does_not_exist_yet_is_empty_configuration(
    tmp_path: Path,
) -> None:
    absent = tmp_path / "not-yet" / "config.toml"
    assert load_settings(config_path=absent, environ={}) == load_settings(environ={})
    assert load_settings(environ={"RESYWATCH_CONFIG": str(absent)}) == load_settings(environ={})
    dangling = tmp_path / "link.toml"
    dangling.symlink_to(tmp_path / "elsewhere" / "config.toml")
    assert load_settings(config_path=dangling, environ={}) == load_settings(environ={})
    assert not absent.exists() and not absent.parent.exists()  # reading creates nothing


def test_secrets_are_hidden_and_listed() -> None:
    env = {
        "RESYWATCH_RESY_API_KEY": "api-key-123456",
        "RESYWATCH_RESY_AUTH_TOKEN": "token-abcdef",
        "RESYWATCH_DATABASE_URL": "postgresql://user:db-password@host/db",
        "RESYWATCH_NOTIFY_URLS": "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/1",
    }
    settings = load_settings(environ=env)
    for secret in ("api-key-123456", "token-abcdef", "db-password", "AAHdqTcvCH1vGW"):
        assert secret not in repr(settings) + str(settings)
    assert {"api-key-123456", "token-abcdef", "db-password", "user:db-password"} <= set(
        settings.secrets()
    )
    assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" in settings.secrets()  # channel URL tokens too


def test_empty_values_mean_unset() -> None:
    settings = load_settings(environ={"RESYWATCH_RESY_API_KEY": "", "RESYWATCH_DATABASE_URL": ""})
    assert settings.resy_api_key is not None
    assert settings.resy_api_key.get_secret_value() == DEFAULT_RESY_API_KEY
    assert settings.uses_default_database


def test_the_public_web_api_key_is_the_default_and_can_be_overridden(tmp_path: Path) -> None:
    """Finding 17: a new user needs only `auth login` (Cierge's DefaultApiKey)."""
    default = load_settings(environ={})
    assert default.resy_api_key is not None
    assert default.resy_api_key.get_secret_value() == DEFAULT_RESY_API_KEY
    assert default.resy_auth_token is None
    config = tmp_path / "config.toml"
    config.write_text('[resy]\napi_key = "rotated-key-1"\n')
    from_file = load_settings(config_path=config, environ={}).resy_api_key
    assert from_file is not None and from_file.get_secret_value() == "rotated-key-1"
    from_env = load_settings(
        config_path=config, environ={"RESYWATCH_RESY_API_KEY": "rotated-key-2"}
    ).resy_api_key
    assert from_env is not None and from_env.get_secret_value() == "rotated-key-2"


def test_set_config_value_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    import stat

    from resywatch.config import set_config_value

    config = write(
        tmp_path / "c.toml",
        '# my settings\n[resy]\nbase_url = "http://x"  # sandbox\n[discovery]\ndays = 7\n',
    )
    set_config_value(config, "resy", "auth_token", "tok-1")
    text = config.read_text()
    assert "# my settings" in text and "# sandbox" in text
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    settings = load_settings(config_path=config, environ={})
    assert settings.resy_auth_token is not None
    assert settings.resy_auth_token.get_secret_value() == "tok-1"
    assert settings.discovery_days == 7

    set_config_value(config, "resy", "auth_token", "tok-2")
    assert config.read_text().count("auth_token") == 1
    set_config_value(config, "resy", "auth_token", None)
    assert "auth_token" not in config.read_text()
    assert load_settings(config_path=config, environ={}).resy_base_url == "http://x"


def test_set_config_value_creates_file_and_section(tmp_path: Path) -> None:
    from resywatch.config import set_config_value

    config = tmp_path / "new" / "deeper" / "config.toml"
    set_config_value(config, "resy", "auth_token", 'quote"and\\backslash')
    token = load_settings(config_path=config, environ={}).resy_auth_token
    assert token is not None and token.get_secret_value() == 'quote"and\\backslash'
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    assert os.listdir(config.parent) == ["config.toml"]  # no temporary file left


@pytest.mark.parametrize("dangling", [False, True])
def test_set_config_value_writes_through_a_symlink(tmp_path: Path, dangling: bool) -> None:
    from resywatch.config import set_config_value

    target = tmp_path / "dotfiles" / "resywatch.toml"
    if not dangling:  # else the target and its directory are created
        target.parent.mkdir()
        write(target, "[discovery]\ndays = 7\n")
    link = tmp_path / "config" / "config.toml"
    link.parent.mkdir()
    link.symlink_to(target)
    set_config_value(link, "resy", "auth_token", "tok-1")
    assert link.is_symlink() and link.resolve() == target  # the link is kept
    assert 'auth_token = "tok-1"' in target.read_text()
    assert ("days = 7" in target.read_text()) is not dangling
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(link.parent) == ["config.toml"]


def test_an_unwritable_config_is_a_clear_error_and_nothing_is_written(tmp_path: Path) -> None:
    from resywatch.config import set_config_value
    from resywatch.errors import ConfigNotWritable

    blocker = write(tmp_path / "not-a-dir", "")
    config = blocker / "config.toml"  # its "directory" is a file
    with pytest.raises(ConfigNotWritable, match=f"cannot write the config file {config}") as e:
        set_config_value(config, "resy", "auth_token", "tok-1")
    assert e.value.exit_code == 1 and e.value.code == "config_not_writable"
    assert blocker.read_text() == ""


def test_a_failed_replace_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from resywatch.config import set_config_value
    from resywatch.errors import ConfigNotWritable

    config = write(tmp_path / "config.toml", '[resy]\nauth_token = "old"\n')

    def refuse(*_: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(ConfigNotWritable, match="Permission denied"):
        set_config_value(config, "resy", "auth_token", "new")
    assert config.read_text() == '[resy]\nauth_token = "old"\n'
    assert os.listdir(tmp_path) == ["config.toml"]  # the temporary file is gone


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into any directory")
def test_a_read_only_directory_is_named(tmp_path: Path) -> None:
    from resywatch.config import set_config_value
    from resywatch.errors import ConfigNotWritable

    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(ConfigNotWritable, match=f"{locked / 'config.toml'}"):
        set_config_value(locked / "config.toml", "resy", "auth_token", "tok-1")
    assert os.listdir(locked) == []


def test_token_expiry_reads_the_jwt_exp_claim() -> None:
    import base64
    import json
    from datetime import UTC, datetime

    from resywatch.services.auth import token_expiry

    claims = base64.urlsafe_b64encode(json.dumps({"exp": 1893456000}).encode()).rstrip(b"=")
    assert token_expiry(f"h.{claims.decode()}.s") == datetime(2030, 1, 1, tzinfo=UTC)
    assert token_expiry("not-a-jwt") is None


def test_the_example_config_file_is_valid_and_shows_the_defaults() -> None:
    example = Path(__file__).parents[2] / "examples" / "config.toml"
    assert load_settings(config_path=example, environ={}) == load_settings(environ={})
