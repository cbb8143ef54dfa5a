"""Building the replica set of DATABASE_REPLICA_URLS at startup (server/services.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from loaders.batch import SessionMaker
from server.database import create_sessionmaker
from server.replicas.replica_set import Replica, ReplicaSet
from server.settings import Settings

CONNECT_TIMEOUT = 2.0
"""Longest wait for a new connection to a replica: one that does not answer is
skipped (and its reads run on the primary) rather than waited for."""


async def open_replicas(
    settings: Settings,
    *,
    primary: SessionMaker,
    engine_for: Callable[[str], AsyncEngine],
) -> ReplicaSet | None:
    """The started replica set of `settings` (None without replicas); each replica's
    engine made by `engine_for(url)`, as the primary's is."""
    urls = settings.database_replica_urls
    if not urls:
        return None
    replicas = []
    for url in urls:
        engine = engine_for(url)
        _connect_timeout(engine)
        # Checks get a connection of their own: a busy pool must not look like a dead replica.
        probe = create_async_engine(url, pool_size=1, max_overflow=0, pool_recycle=300)
        _connect_timeout(probe)
        replicas.append(Replica(_name(url), engine, create_sessionmaker(engine), probe))
    replica_set = ReplicaSet(
        replicas,
        primary=primary,
        max_lag=settings.replica_max_lag_seconds,
        sticky=settings.replica_sticky_seconds,
    )
    await replica_set.start()
    return replica_set


def _name(url: str) -> str:
    parsed = make_url(url)
    return f"{parsed.host}:{parsed.port or 5432}/{parsed.database}"


def _connect_timeout(engine: AsyncEngine) -> None:
    def connect_args(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        cparams.setdefault("timeout", CONNECT_TIMEOUT)

    event.listen(engine.sync_engine, "do_connect", connect_args)
