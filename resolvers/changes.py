"""Change announcements: what a successful write changed, as cache tags.

Every write returns a `Changes` value, published only after its transaction
committed (a rolled-back write raises and returns nothing to publish).

Tags: `Type:id` for an entity, and for the aggregates shown on it (a product's
averageRating/reviewCount, a user's orderCount); `Type:list` for the root
listing of a type; `Type:list:<column>=<id>` for the list under one parent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loaders.records import OrderRecord, ProductRecord, ReviewRecord, UserRecord
from loaders.tags import entity_tag, list_tag

# Templates of the tags a write changes, filled in from the ids it passes to
# `announce`; spelt by loaders/tags.py, as the loaders spell what they read.
_ORDER = entity_tag(OrderRecord, "{order_id}")
_ORDER_LISTS = (list_tag(OrderRecord), list_tag(OrderRecord, "user_id", "{user_id}"))
_PRODUCT = entity_tag(ProductRecord, "{product_id}")
_USER = entity_tag(UserRecord, "{user_id}")

# The rules, one row per write: (entity tags, list tags).
CHANGE_RULES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "placeOrder": ((_ORDER, _USER), _ORDER_LISTS),
    # A status change moves the order between status-filtered lists.
    "cancelOrder": ((_ORDER,), _ORDER_LISTS),
    "updateOrderStatus": ((_ORDER,), _ORDER_LISTS),
    "addReview": (
        (entity_tag(ReviewRecord, "{review_id}"), _PRODUCT, _USER),
        (
            list_tag(ReviewRecord, "product_id", "{product_id}"),
            list_tag(ReviewRecord, "user_id", "{user_id}"),
        ),
    ),
    "createProduct": (
        (_PRODUCT,),
        (list_tag(ProductRecord), list_tag(ProductRecord, "category_id", "{category_id}")),
    ),
    # Name, price or activity move a product within listings; a new category
    # moves it between category lists (old and new).
    "updateProduct": (
        (_PRODUCT,),
        (
            list_tag(ProductRecord),
            list_tag(ProductRecord, "category_id", "{category_id}"),
            list_tag(ProductRecord, "category_id", "{old_category_id}"),
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

    @classmethod
    def from_tags(cls, tags: frozenset[str] | set[str]) -> Changes:
        """The changes `tags` name (events carry them as one set: resolvers/events.py)."""
        lists = frozenset(tag for tag in tags if tag.split(":", 2)[1:2] == ["list"])
        return cls(frozenset(tags) - lists, lists)


def announce(write: str, **ids: int) -> Changes:
    """The changes of `write` (a key of CHANGE_RULES) for the given ids."""
    entities, lists = CHANGE_RULES[write]
    return Changes(
        frozenset(tag.format(**ids) for tag in entities),
        frozenset(tag.format(**ids) for tag in lists),
    )
