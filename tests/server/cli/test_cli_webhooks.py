"""`storefront webhooks rotate-secrets` through the real CLI."""

from __future__ import annotations

from cryptography.fernet import Fernet
from sqlalchemy import select

from models import Webhook
from server.events.webhooks.secret_box import SecretBox
from tests.conftest import Database
from tests.server.apps import serve
from tests.server.cli_support import acli, assert_one_line_error
from tests.webhook_support import delete_queue, webhook_env

CREATE = """
mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { secret } }"""


async def test_rotation_re_encrypts_every_secret_under_the_new_key(db: Database) -> None:
    env = webhook_env()
    old = env["WEBHOOK_SECRET_KEY"]
    try:
        async with serve(db, **env) as api:
            admin = await api.token("admin@example.com", role="admin")
            variables = {"input": {"url": "https://1.1.1.1/", "events": ["ORDER_PLACED"]}}
            secret = (await api.data(CREATE, variables, token=admin))["createWebhook"]["secret"]
    finally:
        await delete_queue(env["REDIS_URL"], env["WEBHOOK_QUEUE"])
    new = Fernet.generate_key().decode()
    base = {"DATABASE_URL": db.url}
    rotated = await acli(
        "webhooks", "rotate-secrets", env={**base, "WEBHOOK_SECRET_KEY": f"{new},{old}"}
    )
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.strip() == "1 webhook secret(s) re-encrypted under the first key"
    assert secret not in rotated.stdout + rotated.stderr
    async with db.sessionmaker() as session:
        stored = (await session.scalars(select(Webhook.secret))).one()
    assert SecretBox.from_keys(new).open(stored) == secret  # the old key is no longer needed

    missing = await acli("webhooks", "rotate-secrets", env=base)
    assert_one_line_error(missing, "WEBHOOK_SECRET_KEY is not set")
