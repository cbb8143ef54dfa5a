"""The entity vocabulary: every entity type of the API, declared once.

One row per type that has a global ID or is cached: its read record (whose
`type_name` is the GraphQL type's name and the `Type` of its cache tags, see
loaders/tags.py), its model, its by-id loader, who may see it, and how long
and for whom a response showing it may be cached. What used to be a string
table per concern reads this table instead:

- `node(id:)` / `nodes(ids:)`: which loader fetches a type, and the visibility
  applied to what it found (schema/query.py, resolvers/nodes.py);
- global IDs: which type names an ID may carry (schema/global_id.py);
- the Node interface: the GraphQL type of each record (schema/types/node.py);
- the cache policy: each type's max-age and scope (schema/cache_policy.py);
- cost: the count statement behind each `<Type>Connection.totalCount` (schema/cost.py);
- cache tags and change rules: spelt from the record's `type_name`
  (loaders/tags.py, resolvers/changes.py).

tests/schema/test_entities.py fails when a Strawberry type implementing Node has
no row, or a row names a loader, model or GraphQL type that does not exist.

A new entity type is: its model (models/), its record with `type_name`
(loaders/records.py), its batch function and typed by-id loader (loaders/), its
Strawberry type and the field that reaches it (schema/types/, schema/query.py),
and one row here. Its writes add their rules to resolvers/changes.py.

Example (a type only its owner and admins may see, cached per viewer):
    Entity(WishlistRecord, Wishlist, "wishlist_by_id", Visibility.OWNER_OR_ADMIN,
           owner="user_id", max_age=60, scope=Scope.PRIVATE)
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import Enum

from loaders.records import (
    CategoryRecord,
    OrderItemRecord,
    OrderRecord,
    ProductRecord,
    ReviewRecord,
    UserRecord,
    WebhookDeliveryRecord,
    WebhookRecord,
)
from loaders.tags import Tagged
from models import (
    Base,
    Category,
    Order,
    OrderItem,
    Product,
    Review,
    User,
    Webhook,
    WebhookDelivery,
)
from resolvers.visibility import Visibility


class Scope(Enum):
    """For whom a cached response may be served: anyone, or only the viewer it was for."""

    PUBLIC = "public"
    PRIVATE = "private"


@dataclass(frozen=True, slots=True)
class Entity:
    """One entity type. `loader` is the name of its by-id loader on `Loaders` (None:
    its IDs are valid but `node` resolves them to null); `owner` the record's field
    holding the owning user's id (for Visibility.OWNER_OR_ADMIN); `node` whether the
    GraphQL type implements Node; `connection` whether it is listed through a
    `<Type>Connection`, whose `totalCount` runs a statement of its own."""

    record: type[Tagged]
    model: type[Base]
    loader: str | None
    visibility: Visibility
    max_age: int
    scope: Scope
    owner: str | None = None
    node: bool = True
    connection: bool = False

    def __post_init__(self) -> None:
        # A type not everyone may see must never share a cached response.
        if self.visibility is not Visibility.PUBLIC and self.scope is not Scope.PRIVATE:
            raise ValueError(f"{self.type_name} is {self.visibility.value}: its scope is PRIVATE")
        if self.visibility is Visibility.OWNER_OR_ADMIN and self.loader is not None:
            names = {f.name for f in fields(self.record)}  # type: ignore[arg-type]
            if self.owner not in names:
                raise ValueError(f"{self.type_name} is owner-or-admin: name its owner field")

    @property
    def type_name(self) -> str:
        """The GraphQL type's name, which global IDs and cache tags carry."""
        return self.record.type_name


ENTITIES: tuple[Entity, ...] = (
    Entity(UserRecord, User, "user_by_id", Visibility.PUBLIC, 300, Scope.PUBLIC, connection=True),
    Entity(CategoryRecord, Category, "category_by_id", Visibility.PUBLIC, 3600, Scope.PUBLIC),
    Entity(
        ProductRecord, Product, "product_by_id", Visibility.PUBLIC, 300, Scope.PUBLIC,
        connection=True,
    ),
    Entity(
        ReviewRecord, Review, "review_by_id", Visibility.PUBLIC, 60, Scope.PUBLIC, connection=True
    ),
    Entity(
        OrderRecord, Order, "order_by_id", Visibility.OWNER_OR_ADMIN, 60, Scope.PRIVATE,
        owner="user_id", connection=True,
    ),
    # Items are reached through their order; their IDs name no Node.
    Entity(
        OrderItemRecord, OrderItem, None, Visibility.OWNER_OR_ADMIN, 300, Scope.PRIVATE,
        node=False,
    ),
    # Admin screens of live state: never cached (the worker updates deliveries).
    Entity(
        WebhookRecord, Webhook, "webhook_by_id", Visibility.ADMIN, 0, Scope.PRIVATE,
        connection=True,
    ),
    Entity(
        WebhookDeliveryRecord, WebhookDelivery, "webhook_delivery_by_id", Visibility.ADMIN, 0,
        Scope.PRIVATE, connection=True,
    ),
)  # fmt: skip

ENTITY_OF_TYPE: dict[str, Entity] = {entity.type_name: entity for entity in ENTITIES}
"""The row of each GraphQL type name: one dict lookup per global ID."""

TYPE_OF_RECORD: dict[type, str] = {e.record: e.type_name for e in ENTITIES if e.node}
"""The GraphQL type of each Node's record: records, not GraphQL objects, flow
through resolvers, so the Node interface maps them to their type here."""
