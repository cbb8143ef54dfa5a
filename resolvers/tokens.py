"""API token management (used by the CLI): create, list and revoke.

Creating a token never changes who its user is: a role is given to a new user
only, and `resolvers/roles.py` is the one place a role changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import ROLES, ApiToken, User, utcnow
from resolvers.auth import hash_token, new_token
from resolvers.errors import InvalidInput, NotFound


class RoleMismatch(InvalidInput):
    """A token was asked for with a role its (existing) user does not have."""

    def __init__(self, *, email: str, role: str, requested: str) -> None:
        super().__init__(
            f"{email} is a {role}, not a {requested}: a token never changes a role.",
            field="role",
        )
        self.email = email
        self.role = role
        self.requested = requested


def normalize_email(email: str) -> str:
    """The stored form of an email address; InvalidInput when it is not one."""
    normalized = email.strip().lower()
    if "@" not in normalized:
        raise InvalidInput(f"{normalized!r} is not an email address.", field="email")
    return normalized


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    user_id: int
    email: str
    role: str
    created_user: bool


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    email: str
    created_at: datetime
    revoked_at: datetime | None


async def create_token(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    email: str,
    role: str | None = None,
    name: str | None = None,
) -> IssuedToken:
    """A new token for `email`, creating the user (as `role`, default customer) if new.

    For an existing user, a given `role` must be theirs (RoleMismatch otherwise):
    a token for a customer is never quietly an admin's.
    """
    email = normalize_email(email)
    if role is not None and role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}.", field="role")
    token = new_token()
    async with sessionmaker.begin() as session:
        user = (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()
        created = user is None
        if user is None:
            user = User(email=email, name=name or email.split("@", 1)[0], role=role or "customer")
            session.add(user)
            await session.flush()
        elif role is not None and role != user.role:
            raise RoleMismatch(email=email, role=user.role, requested=role)
        session.add(ApiToken(user_id=user.id, token_hash=hash_token(token)))
        return IssuedToken(token, user.id, user.email, user.role, created)


async def list_tokens(
    *, sessionmaker: async_sessionmaker[AsyncSession], email: str
) -> list[TokenInfo]:
    """The tokens of `email`, oldest first; NotFound when there is no such user."""
    email = normalize_email(email)
    async with sessionmaker() as session:
        user_id = (await session.execute(select(User.id).where(User.email == email))).scalar()
        if user_id is None:
            raise NotFound(f"No user with the email {email}.")
        rows = await session.execute(
            select(ApiToken.id, User.email, ApiToken.created_at, ApiToken.revoked_at)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.user_id == user_id)
            .order_by(ApiToken.id)
        )
        return [TokenInfo(*row) for row in rows]


async def revoke_token(*, sessionmaker: async_sessionmaker[AsyncSession], token_or_id: str) -> int:
    """Revokes a token given as its text or its numeric id; returns the token id."""
    condition = ApiToken.token_hash == hash_token(token_or_id)
    if token_or_id.isdigit():
        condition = or_(condition, ApiToken.id == int(token_or_id))
    async with sessionmaker.begin() as session:
        token_id = (await session.execute(select(ApiToken.id).where(condition))).scalar()
        if token_id is None:
            raise NotFound("No such token.")
        await session.execute(
            update(ApiToken)
            .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        return int(token_id)
