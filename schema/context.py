"""The per-request GraphQL context: who is asking, and the request's loaders."""

from __future__ import annotations

from dataclasses import dataclass

import strawberry

from loaders import Loaders
from resolvers.viewer import Viewer
from schema.changes import ChangePublisher


@dataclass(slots=True)
class Context:
    viewer: Viewer
    loaders: Loaders
    changes: ChangePublisher


Info = strawberry.Info[Context, None]
