"""`node(id:)` and `nodes(ids:)`: fetch any entity by its by-id loader, as the
viewer may see it. Which loader and which visibility come from the entity
vocabulary (schema/entities.py)."""

from __future__ import annotations

from typing import Any

from loaders import Loaders
from resolvers.viewer import Viewer
from resolvers.visibility import Visibility, may_see


async def node(
    *,
    loaders: Loaders,
    viewer: Viewer,
    loader: str | None,
    visibility: Visibility,
    owner: str | None,
    id_: int,
) -> Any:
    """The entity, or None when it does not exist or the viewer may not see it.

    `loader` names the type's by-id loader (None: ids of the type are valid but
    resolve to None, as OrderItem's); `owner` the record's attribute holding the
    owning user's id, for Visibility.OWNER_OR_ADMIN.
    """
    if loader is None:
        return None
    found = await getattr(loaders, loader).load(id_)
    if found is None or visibility is Visibility.PUBLIC:
        return found
    owner_id = None if owner is None else getattr(found, owner)
    return found if may_see(viewer, visibility, owner_id=owner_id) else None
