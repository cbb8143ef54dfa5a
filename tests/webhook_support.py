"""Webhook test settings: a fresh Fernet key, the test Redis, a saq queue of the test's own.

Local receivers listen on 127.0.0.1 over http, so these settings allow both;
tests of the SSRF guard turn the allowances off themselves.
"""

from __future__ import annotations

import uuid
from typing import Any

from cryptography.fernet import Fernet
from redis.asyncio import Redis

from tests.redis_support import require_redis_url


def webhook_env(**overrides: str) -> dict[str, str]:
    env = {
        "REDIS_URL": require_redis_url(),
        "WEBHOOK_SECRET_KEY": Fernet.generate_key().decode(),
        "WEBHOOK_QUEUE": f"test-webhooks-{uuid.uuid4().hex[:12]}",
        "WEBHOOK_ALLOW_HTTP": "true",
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "WEBHOOK_RETRY_BASE_SECONDS": "0.05",
        "WEBHOOK_TIMEOUT_SECONDS": "2",
        "WEBHOOK_SWEEP_CRON": "* * * * * */2",
        "WEBHOOK_STUCK_SECONDS": "2",
        "RATE_LIMIT_ENABLED": "false",
    }
    env.update(overrides)
    return env


async def delete_queue(redis_url: str, name: str) -> None:
    """Every key of the saq queue `name` (jobs included)."""
    client: Any = Redis.from_url(redis_url)
    try:
        for pattern in (f"saq:{name}:*", f"saq:job:{name}:*", f"saq:abort:{name}:*"):
            keys = [key async for key in client.scan_iter(match=pattern, count=1000)]
            if keys:
                await client.delete(*keys)
    finally:
        await client.aclose()
