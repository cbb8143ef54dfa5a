"""Change announcements: what a successful write changed, as cache tags.

Every write returns a `Changes` value, published only after its transaction
committed (a rolled-back write raises and returns nothing to publish).

Tags: `Type:id` for an entity, and for the aggregates shown on it (a product's
averageRating/reviewCount, a user's orderCount); `Type:list` for the root
listing of a type; `Type:list:<column>=<id>` for the list under one parent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The rules, one row per write: (entity tags, list tags), filled in from the
# ids the write passes to `announce`.
CHANGE_RULES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "placeOrder": (
        ("Order:{order_id}", "User:{user_id}"),
        ("Order:list", "Order:list:user_id={user_id}"),
    ),
    # A status change moves the order between status-filtered lists.
    "cancelOrder": (("Order:{order_id}",), ("Order:list", "Order:list:user_id={user_id}")),
    "updateOrderStatus": (("Order:{order_id}",), ("Order:list", "Order:list:user_id={user_id}")),
    "addReview": (
        ("Review:{review_id}", "Product:{product_id}", "User:{user_id}"),
        ("Review:list:product_id={product_id}", "Review:list:user_id={user_id}"),
    ),
    "createProduct": (
        ("Product:{product_id}",),
        ("Product:list", "Product:list:category_id={category_id}"),
    ),
    # Name, price or activity move a product within listings; a new category
    # moves it between category lists (old and new).
    "updateProduct": (
        ("Product:{product_id}",),
        (
            "Product:list",
            "Product:list:category_id={category_id}",
            "Product:list:category_id={old_category_id}",
        ),
    ),
}


@dataclass(frozen=True, slots=True)
class Changes:
    """The entities and lists one committed write changed."""

    entities: frozenset[str] = field(default_factory=frozenset)
    lists: frozenset[str] = field(default_factory=frozenset)

    @property
    def tags(self) -> frozenset[str]:
        return self.entities | self.lists

    def __bool__(self) -> bool:
        return bool(self.entities or self.lists)


def announce(write: str, **ids: int) -> Changes:
    """The changes of `write` (a key of CHANGE_RULES) for the given ids."""
    entities, lists = CHANGE_RULES[write]
    return Changes(
        frozenset(tag.format(**ids) for tag in entities),
        frozenset(tag.format(**ids) for tag in lists),
    )
