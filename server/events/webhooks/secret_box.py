"""Signing secrets at rest: Fernet under WEBHOOK_SECRET_KEY, several keys for rotation.

WEBHOOK_SECRET_KEY holds one or more Fernet keys, comma-separated, newest first
(cryptography's MultiFernet): the first encrypts, any decrypts. Rotation adds
a new key in front, re-encrypts every stored secret (`rotate_secrets`, run by
`storefront webhooks rotate-secrets`), then drops the old key.

Example:
    box = SecretBox.from_keys("k1new...,k0old...")
    box.open(box.seal("whsec_..."))  # "whsec_..."
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Webhook


class SecretKeyError(ValueError):
    """WEBHOOK_SECRET_KEY is missing or not Fernet keys (the message says which)."""


class SecretBox:
    def __init__(self, fernet: MultiFernet) -> None:
        self._fernet = fernet

    @classmethod
    def from_keys(cls, keys: str | None) -> SecretBox:
        parts = [key.strip() for key in (keys or "").split(",") if key.strip()]
        if not parts:
            raise SecretKeyError(
                "WEBHOOK_SECRET_KEY is not set: webhooks need it to store their signing secrets"
                " (a Fernet key: `python -c 'from cryptography.fernet import Fernet;"
                " print(Fernet.generate_key().decode())'`)."
            )
        try:
            return cls(MultiFernet([Fernet(key) for key in parts]))
        except ValueError:
            raise SecretKeyError(
                "WEBHOOK_SECRET_KEY must be Fernet keys (URL-safe base64 of 32 bytes),"
                " comma-separated."
            ) from None

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise SecretKeyError(
                "a webhook secret does not decrypt with any WEBHOOK_SECRET_KEY key"
                " (was a key dropped before `storefront webhooks rotate-secrets`?)"
            ) from None

    def rotate(self, sealed: str) -> str:
        """`sealed` re-encrypted under the first key."""
        return self._fernet.rotate(sealed.encode()).decode()


async def rotate_secrets(*, sessionmaker: async_sessionmaker[AsyncSession], box: SecretBox) -> int:
    """Re-encrypts every webhook secret under the newest key; the number of webhooks."""
    async with sessionmaker.begin() as session:
        rows = (await session.execute(select(Webhook.id, Webhook.secret).with_for_update())).all()
        for webhook_id, sealed in rows:
            await session.execute(
                update(Webhook).where(Webhook.id == webhook_id).values(secret=box.rotate(sealed))
            )
    return len(rows)
