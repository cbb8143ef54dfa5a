"""Settings: one declaration per variable, read by one loop, documented by README's table."""

from __future__ import annotations

import ipaddress
from dataclasses import fields

import pytest

from server.cli.settings_doc import README, REGENERATE, settings_table, with_table
from server.settings import Settings, SettingsError, declared


def test_readme_configuration_table_is_the_rendering_of_the_declarations() -> None:
    readme = README.read_text(encoding="utf-8")
    assert readme == with_table(readme, settings_table()), (
        f"README.md's configuration table differs from server/settings.py: run `{REGENERATE}`"
    )


def test_every_setting_is_declared_once_with_a_one_line_doc() -> None:
    variables = dict(declared())
    undeclared = {spec.name for spec in fields(Settings) if spec not in variables}
    assert undeclared == {"extra"}  # not read from the environment
    names = [variable.name for variable in variables.values()]
    assert len(names) == len(set(names))
    for variable in variables.values():
        assert variable.doc.strip()
        assert "\n" not in variable.doc
        assert f"| `{variable.name}` |" in settings_table()


def test_unset_and_empty_variables_take_the_declared_defaults() -> None:
    assert Settings.from_env({}) == Settings()
    empty = {variable.name: "" for _, variable in declared()}
    assert Settings.from_env(empty) == Settings()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "eighty"}, "PORT must be a whole number, got 'eighty'"),
        ({"AUTH_CACHE_SECONDS": "0.5"}, "AUTH_CACHE_SECONDS must be a whole number, got '0.5'"),
        (
            {"RATE_LIMIT_RESTORE_RATE": "fast"},
            "RATE_LIMIT_RESTORE_RATE must be a number (e.g. 0.5), got 'fast'",
        ),
        (
            {"CACHE_ENABLED": "maybe"},
            "CACHE_ENABLED must be true or false (or 1/0, yes/no, on/off), got 'maybe'",
        ),
        (
            {"LOG_LEVEL": "LOUD"},
            "LOG_LEVEL must be one of info, debug, warning, error, critical, got 'loud'",
        ),
        (
            {"PERSISTED_QUERIES": "some"},
            "PERSISTED_QUERIES must be one of apq, trusted, audit, off, got 'some'",
        ),
        ({"DB_POOLER": "pgpool"}, "DB_POOLER must be one of none, pgbouncer, got 'pgpool'"),
        (
            {"DB_CONNECTION_SHARE": "1.5"},
            "DB_CONNECTION_SHARE must be above 0 and at most 1, got 1.5",
        ),
        ({"PORT": "70000"}, "PORT must be between 0 and 65535, got 70000"),
        ({"MAX_BATCH": "0"}, "MAX_BATCH must be greater than 0, got 0"),
        (
            {"RATE_LIMIT_RESTORE_RATE": "-1"},
            "RATE_LIMIT_RESTORE_RATE must be greater than 0, got -1.0",
        ),
        ({"WEB_CONCURRENCY": "-2"}, "WEB_CONCURRENCY must be greater than 0, got -2"),
        ({"CACHE_ENTITY_TTL": "-1"}, "CACHE_ENTITY_TTL must be 0 or more, got -1"),
        ({"COMPRESSION_MIN_BYTES": "-1"}, "COMPRESSION_MIN_BYTES must be 0 or more, got -1"),
        (
            {"COMPRESSION_ZSTD_LEVEL": "23"},
            "COMPRESSION_ZSTD_LEVEL must be between 1 and 22, got 23",
        ),
        ({"COMPRESSION_BR_LEVEL": "-1"}, "COMPRESSION_BR_LEVEL must be between 0 and 11, got -1"),
        ({"COMPRESSION_GZIP_LEVEL": "0"}, "COMPRESSION_GZIP_LEVEL must be between 1 and 9, got 0"),
        ({"AUTH_STALE_SECONDS": "-0.5"}, "AUTH_STALE_SECONDS must be 0 or more, got -0.5"),
        # A derived default is bounded like a read value.
        ({"REDIS_TIMEOUT_MS": "0"}, "REDIS_TIMEOUT_MS must be greater than 0, got 0"),
        # An unreadable value is reported before an out-of-bounds one.
        ({"MAX_BATCH": "0", "PORT": "x"}, "PORT must be a whole number, got 'x'"),
    ],
)
def test_a_bad_value_is_refused_with_the_variable_and_what_it_accepts(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    assert str(raised.value) == message


def test_the_trusted_proxies_error_names_the_variable_and_the_bad_part() -> None:
    with pytest.raises(SettingsError, match=r"^TRUSTED_PROXIES must be a comma-separated list"):
        Settings.from_env({"TRUSTED_PROXIES": "10.0.0.0/8, nonsense"})


def test_values_are_read_as_declared() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgres://shop@db/shop",
            "ENVIRONMENT": "Staging",
            "LOG_LEVEL": "DEBUG",
            "DB_POOL_PRE_PING": "Yes",
            "RATE_LIMIT_ENABLED": "off",
            "AUTH_STALE_SECONDS": "2.5",
            "TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1",
            "CORS_ALLOWED_ORIGINS": " https://a.example, ,https://b.example ",
            "REDIS_URL": "redis://cache:6379/1",
            "PORT": "0",
            "APQ_REGISTRATIONS_PER_CLIENT": "0",
        }
    )
    assert settings.database_url == "postgresql+asyncpg://shop@db/shop"
    assert (settings.environment, settings.log_level) == ("staging", "debug")
    assert (settings.db_pool_pre_ping, settings.rate_limit_enabled) == (True, False)
    assert settings.auth_stale_seconds == 2.5
    assert settings.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("127.0.0.1/32"),
    )
    assert settings.cors_allowed_origins == ("https://a.example", "https://b.example")
    assert settings.redis_url == "redis://cache:6379/1"
    assert (settings.port, settings.apq_registrations_per_client) == (0, 0)


def test_derived_defaults_follow_the_settings_they_derive_from() -> None:
    production = Settings.from_env({"ENVIRONMENT": "PRODUCTION"})
    assert (production.introspection, production.graphiql) == (False, False)
    chosen = Settings.from_env({"ENVIRONMENT": "production", "GRAPHIQL": "1"})
    assert (chosen.introspection, chosen.graphiql) == (False, True)
    assert Settings.from_env({"REDIS_TIMEOUT_MS": "80"}).cache_redis_timeout_ms == 80


def test_the_table_is_rewritten_only_between_the_markers() -> None:
    readme = "intro\n<!-- settings:begin -->\nold\n<!-- settings:end -->\noutro\n"
    assert with_table(readme, "new\n") == (
        "intro\n<!-- settings:begin -->\nnew\n<!-- settings:end -->\noutro\n"
    )
    with pytest.raises(ValueError, match="markers"):
        with_table("no markers here\n", "new\n")


@pytest.mark.parametrize(
    ("workers", "pool"), [("", 25), ("1", 25), ("2", 12), ("3", 8), ("4", 6), ("5", 5), ("8", 5)]
)
def test_the_pool_default_shares_the_host_s_twenty_five_among_its_workers(
    workers: str, pool: int
) -> None:
    settings = Settings.from_env({"WEB_CONCURRENCY": workers})
    assert (settings.db_pool_size, settings.db_max_overflow) == (pool, 0)
    assert Settings.from_env({"WEB_CONCURRENCY": "2", "DB_POOL_SIZE": "7"}).db_pool_size == 7
