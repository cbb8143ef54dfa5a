"""Fixtures shared by the whole suite: one database per backend, cleaned per test.

The embedded SQLite backend always runs; PostgreSQL runs whenever
TEST_DATABASE_URL is set (CI sets it), so behaviour is checked on both.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from models import Base
from schema.compiled.compare import mismatches, shadowing
from server.database import create_engine, create_sessionmaker
from server.settings import Settings, normalize_database_url

if TYPE_CHECKING:
    from server.services import Services

# "pgbouncer" is PostgreSQL through a real PgBouncer in transaction mode with
# DB_POOLER=pgbouncer (tests/pgbouncer_support.py), for the modules below only.
BACKENDS = ["sqlite", "postgresql", "pgbouncer"]
PGBOUNCER_MODULES = frozenset(
    {
        "tests/schema/test_catalog.py",  # reads
        "tests/schema/test_mutations.py",  # writes
        "tests/server/http/test_idempotency.py",
        "tests/server/http/test_limits_http.py",  # depth, cost, timeouts
        "tests/server/ratelimit/test_rate_limit.py",
        "tests/server/cache/test_response_cache_http.py",
        "tests/server/postgres/test_pgbouncer.py",
    }
)
# Printed under the skip counts; the README's "Testing" section says more.
ENABLE_SKIPPED = (
    "To run them (README, Testing): set TEST_DATABASE_URL (an empty PostgreSQL database), "
    "set TEST_REDIS_URL (a Redis database the tests may write to), "
    "run `make e2e-deps`, `make promtool`, `make scaleout-deps` and `make decoders`."
)


def _postgres_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL")
    return normalize_database_url(url) if url else None


@dataclass
class Database:
    """A migrated database of one backend, with a statement counter."""

    backend: str
    url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    statements: list[str] = field(default_factory=list)
    pooler: str = "none"
    """DB_POOLER: `pgbouncer` when `url` reaches PostgreSQL through PgBouncer."""
    direct_url: str | None = None
    """PostgreSQL itself, past the pooler (None: `url`)."""

    @property
    def env(self) -> dict[str, str]:
        """The environment of an app over this database (tests add their own)."""
        # Factories write behind the API's back (nothing is announced), so the
        # suite runs uncached; the result-cache tests turn it on themselves. GC tuning's
        # full collection per app started would add minutes: test_gc_tuning.py has it on.
        # Every query runs on both executors, compared (`no_execution_mismatch`).
        return {
            "DATABASE_URL": self.url,
            "DB_POOLER": self.pooler,
            "CACHE_ENABLED": "false",
            "GC_TUNING": "false",
            "GRAPHQL_EXECUTION": "compare",
        }

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    async def truncate(self) -> None:
        tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
        async with self.engine.begin() as conn:
            if self.backend == "postgresql":
                await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                for name in tables:
                    await conn.execute(text(f"DELETE FROM {name}"))
                await conn.execute(text("DELETE FROM sqlite_sequence"))


async def _migrate(url: str) -> None:
    from server.cli.migrate import upgrade

    await upgrade(url)


async def _open(backend: str, url: str, pooler: str = "none") -> Database:
    engine = create_engine(Settings.from_env({"DATABASE_URL": url, "DB_POOLER": pooler}))
    db = Database(backend, url, engine, create_sessionmaker(engine), pooler=pooler)

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not shadowing.get():  # the compared reference run's SQL is not the request's
            db.statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    return db


@pytest_asyncio.fixture(scope="session", params=BACKENDS)
async def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    backend: str = request.param
    if backend in ("postgresql", "pgbouncer"):
        url = _postgres_url()
        if url is None:
            pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL backend not configured")
    else:
        path: Path = tmp_path_factory.mktemp("sqlite") / "test.db"
        url = f"sqlite+aiosqlite:///{path}"
    await _migrate(url)
    if backend == "pgbouncer":
        from tests.pgbouncer_support import running_pgbouncer

        with running_pgbouncer(url) as bouncer:
            db = await _open("postgresql", bouncer.url, pooler="pgbouncer")
            db.direct_url = url
            yield db
            await db.engine.dispose()
        return
    db = await _open(backend, url)
    yield db
    await db.engine.dispose()


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, a database and a Redis number per worker (tests/xdist_workers.py)."""
    from tests.xdist_workers import isolate, worker_number

    isolate(worker_number(getattr(config, "workerinput", None)))


def pytest_unconfigure(config: pytest.Config) -> None:
    from tests.xdist_workers import release, worker_number

    release(worker_number(getattr(config, "workerinput", None)))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The PgBouncer backend runs only the modules of PGBOUNCER_MODULES."""
    root = Path(__file__).resolve().parent.parent
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        through_pgbouncer = callspec is not None and callspec.params.get("database") == "pgbouncer"
        module = Path(str(item.path)).resolve().relative_to(root).as_posix()
        dropped_here = through_pgbouncer and module not in PGBOUNCER_MODULES
        (dropped if dropped_here else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(autouse=True)
def no_execution_mismatch() -> Any:
    """Fails a test whose queries the compiled executor answered differently from
    graphql-core (apps of `db.settings` compare every query they compile)."""
    mismatches.clear()
    yield
    found = list(mismatches)
    mismatches.clear()
    assert not found, "compiled execution differs from graphql-core:\n" + "\n".join(
        f"query: {m.query}\nvariables: {m.variables}\ncompiled:  {m.compiled}\n"
        f"reference: {m.reference}"
        for m in found
    )


@pytest_asyncio.fixture
async def db(database: Database) -> AsyncIterator[Database]:
    """The backend's database, empty at the start of the test."""
    await database.truncate()
    database.statements.clear()
    yield database


@pytest.fixture
def factory(db: Database) -> Any:
    from tests.factories import Factory

    return Factory(db.sessionmaker)


class Api:
    """An HTTP client of a running app, with helpers for GraphQL calls and tokens."""

    def __init__(self, client: Any, app: Any, db: Database) -> None:
        self.client = client
        self.app = app
        self.db = db
        self.statements: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if not shadowing.get():
                self.statements.append(statement)

        event.listen(self.services.engine.sync_engine, "before_cursor_execute", record)

    @property
    def services(self) -> Services:
        """The app's long-lived services, as its requests see them."""
        from server.services import services_of

        return services_of(self.app)

    def replace_services(self, **changes: Any) -> None:
        """Swaps services of the running app (a broken engine, a clock of the test's)."""
        self.app.state.services = dataclasses.replace(self.services, **changes)

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        operation_name: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        if operation_name is not None:
            body["operationName"] = operation_name
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        return await self.client.post("/graphql", json=body, headers=all_headers)

    async def query(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
        """POST and return the JSON body, asserting the HTTP status is 200."""
        response = await self.post(query, variables, **kw)
        assert response.status_code == 200, response.text
        return response.json()

    async def data(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
        """POST and return `data`, asserting there were no errors."""
        body = await self.query(query, variables, **kw)
        assert "errors" not in body, body["errors"]
        return body["data"]

    async def token(self, email: str, role: str | None = None) -> str:
        from resolvers.tokens import create_token

        issued = await create_token(sessionmaker=self.db.sessionmaker, email=email, role=role)
        return issued.token


@pytest_asyncio.fixture
async def api(db: Database) -> AsyncIterator[Api]:
    """The real app over `db`, served through its ASGI interface with its lifespan."""
    import httpx
    from asgi_lifespan import LifespanManager

    from server.app import create_app

    app = create_app(db.settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Api(client, app, db)


_RELAYED = ("outbox_events", "published_at")


async def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to prove a failed write left no trace (but when the
    relay published an outbox row: that is not the write's doing)."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    async with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if (table.name, c.name) != _RELAYED]
            result = await conn.execute(select(*columns).order_by(*table.primary_key.columns))
            rows[table.name] = [tuple(row) for row in result]
    return rows


@pytest.fixture
def redis_url() -> str:
    """TEST_REDIS_URL: a Redis database the tests may write to (skips when unset).

    Tests keep to keys of their own (a unique prefix or client) and delete them.
    """
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("TEST_REDIS_URL is not set: Redis backend not configured")
    return url


@pytest_asyncio.fixture
async def redis(redis_url: str) -> AsyncIterator[Any]:
    """A `redis.asyncio.Redis` client of TEST_REDIS_URL, closed after the test."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say why tests were skipped: one line per reason, with how many it skipped."""
    reasons: Counter[str] = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    if not reasons:
        return
    terminalreporter.section("why tests were skipped")
    for reason, count in reasons.most_common():
        terminalreporter.write_line(f"{count} skipped: {reason}")
    terminalreporter.write_line(ENABLE_SKIPPED)
