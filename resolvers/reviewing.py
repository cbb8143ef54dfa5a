"""Writing reviews: one per user and product, enforced by the database."""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from loaders.records import ReviewRecord
from loaders.sql import record_columns
from models import Product, Review
from resolvers.changes import announce
from resolvers.errors import InvalidInput
from resolvers.events import Event, record_events, review_event
from resolvers.idempotency import KeyedWrite, claim_key, record_key
from resolvers.validation import is_unique_violation, require_range, require_text
from resolvers.viewer import Viewer

MAX_BODY_LENGTH = 5000

# What the write returns: the read record's columns, in its field order.
_REVIEW_COLUMNS = record_columns(Review.__table__, ReviewRecord)


async def add_review(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    viewer: Viewer,
    product_id: int,
    rating: int,
    body: str,
    idempotency: KeyedWrite | None = None,
) -> tuple[ReviewRecord, list[Event]]:
    """The viewer's review of a product. A second one is BAD_USER_INPUT, also when two
    requests race: the unique constraint decides and its violation is translated."""
    user = viewer.require_user()
    require_range(rating, 1, 5, field="input.rating")
    text = require_text(body, field="input.body", max_length=MAX_BODY_LENGTH)
    try:
        async with sessionmaker.begin() as session:
            await claim_key(idempotency, session)
            exists = await session.scalar(select(Product.id).where(Product.id == product_id))
            if exists is None:
                raise InvalidInput("No product has this ID.", field="input.productId")
            created = await session.execute(
                insert(Review)
                .values(product_id=product_id, user_id=user.id, rating=rating, body=text)
                .returning(*_REVIEW_COLUMNS)
            )
            review = ReviewRecord(*created.one())
            changes = announce(
                "addReview", review_id=review.id, product_id=product_id, user_id=user.id
            )
            events = [review_event(review, changes)]
            await record_events(session, events)
            await record_key(
                idempotency, session, field="addReview", result_id=review.id, events=events
            )
    except IntegrityError as error:
        if is_unique_violation(
            error,
            constraint="uq_reviews_product_id_user_id",
            columns="reviews.product_id, reviews.user_id",
        ):
            raise InvalidInput(
                "You have already reviewed this product.", field="input.productId"
            ) from None
        raise
    return review, events
