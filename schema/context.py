"""The per-request GraphQL context: who is asking, the request's loaders, and the
Idempotency-Key guarding its write (if any)."""

from __future__ import annotations

from dataclasses import dataclass

import strawberry

from loaders import Loaders
from resolvers.idempotency import KeyedWrite
from resolvers.viewer import Viewer
from resolvers.webhooks import WebhookSetup
from schema.changes import ChangePublisher


@dataclass(slots=True)
class Context:
    viewer: Viewer
    loaders: Loaders
    changes: ChangePublisher
    idempotency: KeyedWrite | None = None
    webhooks: WebhookSetup | None = None


Info = strawberry.Info[Context, None]


def fresh_context(context: Context) -> Context:
    """A context for running the same operation again, as if alone: the same viewer,
    new loaders (nothing cached, nothing observed) whose cache tags are added to the
    first context's, no Idempotency-Key."""
    loaders = Loaders(sessionmaker=context.loaders.sessionmaker, dialect=context.loaders.dialect)
    loaders.tags = context.loaders.tags  # what the answer read, whichever run answers
    return Context(
        viewer=context.viewer, loaders=loaders, changes=context.changes, webhooks=context.webhooks
    )
