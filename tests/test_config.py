from pathlib import Path

import pytest

from bookwise.config import load_settings, secret_key_of
from bookwise.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.source == "<defaults>"
    assert settings.database_url == f"sqlite:///{tmp_path / 'instance' / 'bookwise.db'}"
    assert settings.workflows_dir == tmp_path / "workflows"
    assert settings.locales == ("en", "fr", "de", "es")
    assert settings.scheduler.enabled is True


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    config = (
        write(tmp_path / "conf" / "bookwise.yaml", "workflows: flows\n")
        if ((tmp_path / "conf").mkdir() or True)
        else None
    )
    assert config is not None
    settings = load_settings(config, environ={})
    assert settings.workflows_dir == tmp_path / "conf" / "flows"
    assert settings.database_url.endswith(str(tmp_path / "conf" / "instance" / "bookwise.db"))


def test_precedence_option_then_environment_file(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml", "default_locale: fr\n")
    b = write(tmp_path / "b.yaml", "default_locale: de\n")
    assert load_settings(a, environ={"BOOKWISE_CONFIG": str(b)}).default_locale == "fr"
    assert load_settings(None, environ={"BOOKWISE_CONFIG": str(b)}).default_locale == "de"


def test_environment_overrides(tmp_path: Path) -> None:
    config = write(tmp_path / "c.yaml", "database_url: sqlite:///x.db\n")
    settings = load_settings(
        config,
        environ={
            "BOOKWISE_DATABASE_URL": "postgresql+psycopg://u@h/db",
            "BOOKWISE_SECRET_KEY": "k" * 40,
            "BOOKWISE_BASE_URL": "https://book.example.org/",
        },
    )
    assert settings.database_url == "postgresql+psycopg://u@h/db"
    assert settings.secret_key == "k" * 40
    assert settings.base_url == "https://book.example.org"


def test_secret_key_is_generated_once_and_private(tmp_path: Path) -> None:
    config = write(tmp_path / "c.yaml", "instance_dir: inst\n")
    settings = load_settings(config, environ={})
    secret_file = tmp_path / "inst" / "secret_key"
    assert settings.secret_key is None
    assert not secret_file.exists(), "reading the configuration writes nothing"
    first = secret_key_of(settings)
    second = secret_key_of(load_settings(config, environ={}))
    assert first == second
    assert len(first) >= 32
    assert secret_file.stat().st_mode & 0o777 == 0o600


def test_default_database_lives_in_the_instance_folder(tmp_path: Path) -> None:
    config = write(tmp_path / "c.yaml", "instance_dir: data\n")
    assert load_settings(config, environ={}).database_url == (
        f"sqlite:///{tmp_path / 'data' / 'bookwise.db'}"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mail:\n  port: abc\n", "c.yaml:2:9: mail.port: expected a whole number, got text 'abc'"),
        ("databse_url: x\n", "c.yaml:1:1: unknown key 'databse_url'; did you mean 'database_url'?"),
        ("locales: [en, french]\n", "c.yaml:1:15: locales[1]: 'french' is not a locale"),
        ("locales: [en, xx]\ndefault_locale: en\n", "locales: unknown language 'xx'"),
        ("scheduler: {enabled: maybe}\n", "scheduler.enabled: expected true or false"),
        ("secret_key: short\n", "secret_key must be a random text of at least 32 characters"),
        ("base_url: bookings.example.org\n", "base_url must be an http:// or https:// address"),
        ("- a\n- b\n", "the configuration must be a mapping"),
        ("default_locale: it\n", "default_locale 'it' is not one of locales"),
        ("mail: {ssl: true, starttls: true}\n", "mail.ssl and mail.starttls exclude each other"),
        ("a: [1\n", "invalid YAML"),
        (
            "cache: {storage: memcached://x}\n",
            "c.yaml: cache.storage: 'memcached://x' is not supported; use memory://",
        ),
        ("cache: {slots_seconds: 0}\n", "cache.slots_seconds"),
    ],
)
def test_bad_configuration_gives_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    config = write(tmp_path / "c.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    assert message in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_bad_environment_override_is_named(tmp_path: Path) -> None:
    config = write(tmp_path / "c.yaml", "{}\n")
    with pytest.raises(ConfigError, match="base_url"):
        load_settings(config, environ={"BOOKWISE_BASE_URL": "not a url"})


def test_repository_config_is_valid() -> None:
    root = Path(__file__).resolve().parent.parent
    settings = load_settings(root / "config.yaml", environ={"BOOKWISE_SECRET_KEY": "s" * 40})
    assert settings.demo_data == root / "demo" / "calendars.yaml"


def test_enabling_a_plugin_that_is_not_installed(tmp_path: Path) -> None:
    config = write(tmp_path / "c.yaml", "plugins: {enabled: [bookwise-nope]}\n")
    with pytest.raises(ConfigError, match=r"plugins\.enabled: no plugin named 'bookwise-nope'"):
        load_settings(config, environ={})


def test_the_slot_cache_settings(tmp_path: Path) -> None:
    config = write(tmp_path / "c.yaml", "cache: {storage: 'redis+unix:///run/redis.sock'}\n")
    cache = load_settings(config, environ={}).cache
    assert cache.redis_url == "unix:///run/redis.sock"  # as the Redis client writes it
    assert (cache.slots_seconds, cache.memory_mb) == (300, 64)
    assert load_settings(write(tmp_path / "d.yaml", ""), environ={}).cache.redis_url is None
