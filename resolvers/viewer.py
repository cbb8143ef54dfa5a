"""Who is asking: the authenticated user, or nobody."""

from __future__ import annotations

from dataclasses import dataclass

from loaders.records import UserRecord
from resolvers.errors import Unauthenticated


@dataclass(frozen=True, slots=True)
class Viewer:
    user: UserRecord | None = None

    @property
    def is_admin(self) -> bool:
        return self.user is not None and self.user.role == "admin"

    def can_see_private_data_of(self, user_id: int) -> bool:
        """The user themself or an admin may see emails, roles and orders."""
        return self.user is not None and (self.user.id == user_id or self.user.role == "admin")

    def require_user(self) -> UserRecord:
        if self.user is None:
            raise Unauthenticated("You must be signed in (Authorization: Bearer <token>).")
        return self.user


ANONYMOUS = Viewer()
