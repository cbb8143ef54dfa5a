"""Bearer-token authentication: the token's SHA-256 is looked up, never the token."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from loaders import listings
from resolvers.errors import Unauthenticated
from resolvers.viewer import ANONYMOUS, Viewer

TOKEN_PREFIX = "sf_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random bearer token (shown once; only its hash is stored)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def authenticate(
    *, sessionmaker: async_sessionmaker[AsyncSession], authorization: str | None
) -> Viewer:
    """The viewer of an `Authorization` header value; anonymous when it is absent.

    Raises Unauthenticated for a malformed header or an unknown or revoked token.
    """
    if authorization is None or authorization.strip() == "":
        return ANONYMOUS
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("The Authorization header must be `Bearer <token>`.")
    user = await listings.viewer_by_token_hash(
        sessionmaker=sessionmaker, token_hash=hash_token(token)
    )
    if user is None:
        raise Unauthenticated("The token is unknown or has been revoked.")
    return Viewer(user)
