"""Who may see an entity: the three visibilities an entity type can declare.

The entity vocabulary (schema/entities.py) gives each type one of them; `node`
and `nodes` apply it, answering null (no error) for what the viewer may not see.

Example:
    may_see(viewer, Visibility.OWNER_OR_ADMIN, owner_id=order.user_id)
"""

from __future__ import annotations

from enum import Enum

from resolvers.viewer import Viewer


class Visibility(Enum):
    PUBLIC = "public"
    """Anyone, anonymous included."""
    OWNER_OR_ADMIN = "owner-or-admin"
    """The user the entity belongs to, and admins."""
    ADMIN = "admin"
    """Admins only."""


def may_see(viewer: Viewer, visibility: Visibility, *, owner_id: int | None = None) -> bool:
    """Whether `viewer` may see an entity of `visibility` owned by `owner_id`."""
    if visibility is Visibility.PUBLIC:
        return True
    if visibility is Visibility.OWNER_OR_ADMIN and owner_id is not None:
        return viewer.can_see_private_data_of(owner_id)
    return viewer.is_admin
