"""The migrations build exactly the schema of models/, and take it down again, on both backends."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Index, inspect, make_url, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateIndex

from models import Base
from server.cli.migrate import alembic_config, current, downgrade, upgrade
from server.settings import normalize_database_url

REPO = Path(__file__).resolve().parents[3]
Scratch = Callable[[], Awaitable[str]]


@asynccontextmanager
async def scratch_database(backend: str, directory: Path) -> AsyncIterator[str]:
    """The URL of a new, empty database of `backend`, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / f'{uuid.uuid4().hex}.db'}"
        return
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL backend not configured")
    url = make_url(normalize_database_url(server_url))
    name = f"storefront_scratch_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture
async def scratch(backend: str, tmp_path: Path) -> AsyncIterator[Scratch]:
    """Makes fresh databases of the test's backend."""
    async with AsyncExitStack() as stack:

        async def make() -> str:
            return await stack.enter_async_context(scratch_database(backend, tmp_path))

        yield make


async def _inspect(url: str, check: Callable[[Connection], Any]) -> Any:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(check)
    finally:
        await engine.dispose()


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names()) - {"alembic_version"}


def _head(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


# Indexes with DESC columns or a WHERE clause: SQLite's reflection reports only
# their plain column names, so compare_metadata sees them as different there.
_EXPRESSION_INDEXES = {
    index.name
    for table in Base.metadata.tables.values()
    for index in table.indexes
    if index.expressions != list(index.columns)
    or index.dialect_options["sqlite"]["where"] is not None
}


_INDEXES = {index.name: index for table in Base.metadata.tables.values() for index in table.indexes}


def _built_on(index: Index, dialect: str) -> bool:
    """Whether `index` exists on `dialect` (an index may be declared for one only, with
    `ddl_if`: the trigram index is PostgreSQL's)."""
    condition = index._ddl_if
    return condition is None or condition.dialect in (None, dialect)


def _unavoidable(diff: Any, dialect: str) -> bool:
    """Differences that come from SQLite's reflection, not from the schema."""
    if dialect != "sqlite":
        return False
    if isinstance(diff, tuple) and diff[0] == "add_index":
        # alembic compares a copy of the index, without its `ddl_if`.
        declared = _INDEXES[diff[1].name]
        if not _built_on(declared, dialect):
            return True
    if isinstance(diff, tuple) and diff[0] in {"add_index", "remove_index"}:
        # Checked on the DDL text instead: test_sqlite_indexes_match_the_models.
        return diff[1].name in _EXPRESSION_INDEXES
    if isinstance(diff, list) and diff[0][0] == "modify_default":
        # alembic's SQLite comparison cannot match an empty-string default ('').
        *_, reflected, expected = diff[0]
        return bool(expected.arg == "" and reflected.arg.text.strip("()") == "''")
    return False


def _schema_differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "compare_server_default": True}
    )
    diffs = compare_metadata(context, Base.metadata)
    return [diff for diff in diffs if not _unavoidable(diff, conn.dialect.name)]


async def test_upgrade_builds_the_schema_of_the_models(scratch: Scratch) -> None:
    url = await scratch()
    assert await current(url) is None

    await upgrade(url)

    assert await current(url) == _head(url)
    assert await _inspect(url, _schema_differences) == []


def _backs_constraint(index: Any) -> bool:
    return "duplicates_constraint" in index


def _constraint_and_index_names(conn: Connection) -> dict[str, set[str]]:
    inspector = inspect(conn)
    names: dict[str, set[str]] = {}
    for table in _tables(conn):
        found = {
            inspector.get_pk_constraint(table)["name"],
            *(fk["name"] for fk in inspector.get_foreign_keys(table)),
            *(uq["name"] for uq in inspector.get_unique_constraints(table)),
            *(ck["name"] for ck in inspector.get_check_constraints(table)),
            *(
                ix["name"]
                for ix in inspector.get_indexes(table)
                if "duplicates_constraint" not in ix
            ),
        }
        names[table] = {name for name in found if name is not None}
    return names


async def test_constraints_and_indexes_are_named_by_the_convention(scratch: Scratch) -> None:
    url = await scratch()
    await upgrade(url)

    names = await _inspect(url, _constraint_and_index_names)

    dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
    for table in Base.metadata.tables.values():
        indexes = {i.name for i in table.indexes if _built_on(i, dialect)}
        expected = {c.name for c in table.constraints} | indexes
        if url.startswith("sqlite"):
            # AUTOINCREMENT makes SQLite declare the primary key inline, unnamed.
            expected.discard(f"pk_{table.name}")
        assert names[table.name] == expected


async def test_sqlite_indexes_match_the_models(tmp_path: Path) -> None:
    async with scratch_database("sqlite", tmp_path) as url:
        await upgrade(url)

        def stored(conn: Connection) -> dict[str, str]:
            rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index'"))
            return {name: " ".join(sql.split()) for name, sql in rows if sql is not None}

        indexes = await _inspect(url, stored)

    dialect = sqlite.dialect()
    for table in Base.metadata.tables.values():
        for index in table.indexes:
            if not _built_on(index, "sqlite"):
                assert index.name not in indexes
                continue
            expected = " ".join(str(CreateIndex(index).compile(dialect=dialect)).split())
            assert indexes[index.name] == expected


async def test_downgrade_to_base_drops_everything_and_upgrade_rebuilds(scratch: Scratch) -> None:
    url = await scratch()
    await upgrade(url)

    await downgrade(url)

    assert await current(url) is None
    assert await _inspect(url, _tables) == set()

    await upgrade(url)

    assert await _inspect(url, _tables) == set(Base.metadata.tables)
    assert await _inspect(url, _schema_differences) == []


async def test_upgrade_is_idempotent(scratch: Scratch) -> None:
    url = await scratch()
    await upgrade(url)
    await upgrade(url)

    assert await current(url) == _head(url)


async def test_env_takes_the_url_from_config_attributes_without_a_connection(
    scratch: Scratch,
) -> None:
    url = await scratch()
    config = alembic_config(url)

    # No connection handed in: env.py runs its own event loop, so off this one.
    await asyncio.to_thread(command.upgrade, config, "head")

    assert await current(url) == _head(url)


async def test_alembic_cli_takes_the_url_from_database_url(scratch: Scratch) -> None:
    url = await scratch()
    env = {**os.environ, "DATABASE_URL": url}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "alembic",
        "upgrade",
        "head",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()

    assert process.returncode == 0, output.decode()
    assert await current(url) == _head(url)


def test_offline_sql_creates_every_table_and_index() -> None:
    """`alembic upgrade --sql` renders the DDL without a database."""
    config = alembic_config("postgresql+asyncpg://nobody@localhost/none")
    config.output_buffer = io.StringIO()

    command.upgrade(config, "head", sql=True)

    sql = config.output_buffer.getvalue()
    for table in Base.metadata.tables.values():
        assert f"CREATE TABLE {table.name} (" in sql
        for index in table.indexes:
            assert f"CREATE INDEX {index.name} " in sql


def _index_names(table: str) -> Callable[[Connection], set[str]]:
    def names(conn: Connection) -> set[str]:
        return {ix["name"] for ix in inspect(conn).get_indexes(table) if ix["name"]}

    return names


async def test_the_trigram_index_is_built_on_postgresql_and_dropped_by_its_downgrade(
    tmp_path: Path,
) -> None:
    async with scratch_database("postgresql", tmp_path) as url:
        await upgrade(url)
        assert "ix_products_name_trgm" in await _inspect(url, _index_names("products"))

        await downgrade(url, "0001")

        assert await current(url) == "0001"
        assert "ix_products_name_trgm" not in await _inspect(url, _index_names("products"))


async def test_a_role_that_may_not_create_pg_trgm_migrates_without_the_index(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL 13+ lets a role with CREATE on the database add pg_trgm (a trusted
    extension); one without it gets the schema, a warning, and no trigram index."""
    async with scratch_database("postgresql", tmp_path) as url:
        target = make_url(url)
        role = f"storefront_noext_{uuid.uuid4().hex[:12]}"
        admin = create_async_engine(target, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            async with admin.connect() as conn:
                await conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
                await conn.execute(text(f'GRANT CREATE, USAGE ON SCHEMA public TO "{role}"'))
            as_role = target.set(username=role, password=None).render_as_string(False)

            with caplog.at_level(logging.WARNING, logger="alembic.runtime.migration"):
                await upgrade(as_role)

            assert await current(as_role) == _head(as_role)
            assert "could not create the pg_trgm extension" in caplog.text
            assert "ix_products_name_trgm skipped" in caplog.text
            indexes = await _inspect(as_role, _index_names("products"))
            assert "ix_products_name_trgm" not in indexes
            assert "ix_products_name_id" in indexes
            await downgrade(as_role)  # nothing to drop: no error either
            assert await current(as_role) is None
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP OWNED BY "{role}"'))
                await conn.execute(text(f'DROP ROLE "{role}"'))
            await admin.dispose()
