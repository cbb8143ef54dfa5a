"""`node(id:)` and `nodes(ids:)`: fetch any entity by its type and database id."""

from __future__ import annotations

from typing import Any

from loaders import Loaders
from resolvers.orders import visible_order
from resolvers.viewer import Viewer

# Types whose ids are public; orders go through the owner-or-admin rule.
_PUBLIC_LOADERS = {
    "User": "user_by_id",
    "Category": "category_by_id",
    "Product": "product_by_id",
    "Review": "review_by_id",
}

NODE_TYPES = frozenset({*_PUBLIC_LOADERS, "Order", "OrderItem"})


async def node(*, loaders: Loaders, viewer: Viewer, type_name: str, id_: int) -> Any:
    """The entity, or None when it does not exist or the viewer may not see it.

    OrderItem ids are valid ids but OrderItem is not a Node: they resolve to None.
    """
    if type_name == "Order":
        return await visible_order(loaders=loaders, viewer=viewer, order_id=id_)
    loader_name = _PUBLIC_LOADERS.get(type_name)
    if loader_name is None:
        return None
    return await getattr(loaders, loader_name).load(id_)
