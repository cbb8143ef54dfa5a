"""Role changes (used by the CLI): the one place a user's role changes, and says so."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import ROLES, User
from resolvers.errors import InvalidInput, NotFound
from resolvers.tokens import normalize_email


@dataclass(frozen=True, slots=True)
class RoleChange:
    user_id: int
    email: str
    old: str
    new: str

    @property
    def changed(self) -> bool:
        return self.old != self.new


async def set_role(
    *, sessionmaker: async_sessionmaker[AsyncSession], email: str, role: str
) -> RoleChange:
    """Gives the user `email` the role `role`; NotFound when there is no such user.

    Their existing tokens carry the new role from their next authentication.
    """
    email = normalize_email(email)
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}.", field="role")
    async with sessionmaker.begin() as session:
        user = (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()
        if user is None:
            raise NotFound(f"No user with the email {email}.")
        old = user.role
        user.role = role
        return RoleChange(user.id, user.email, old, role)
