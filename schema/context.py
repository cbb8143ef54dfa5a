"""The per-request GraphQL context: who is asking, the request's loaders, and the
Idempotency-Key guarding its write (if any)."""

from __future__ import annotations

from dataclasses import dataclass

import strawberry

from loaders import Loaders
from resolvers.idempotency import KeyedWrite
from resolvers.viewer import Viewer
from schema.changes import ChangePublisher


@dataclass(slots=True)
class Context:
    viewer: Viewer
    loaders: Loaders
    changes: ChangePublisher
    idempotency: KeyedWrite | None = None


Info = strawberry.Info[Context, None]
