"""Explicit roles through the real CLI: `token create` never changes one, `user set-role` does
and says so; tokens, listed and used over HTTP, follow."""

from __future__ import annotations

from models import ROLES
from server.cli.tokens import ROLES as CLI_ROLES
from tests.conftest import Database
from tests.factories import Factory
from tests.server.apps import serve
from tests.server.cli_support import acli, assert_one_line_error

VIEWER = "{ viewer { email role } }"


def test_the_cli_offers_the_models_roles() -> None:
    assert sorted(CLI_ROLES) == sorted(ROLES)


async def test_token_create_refuses_another_role_and_set_role_changes_it(db: Database) -> None:
    env = {"DATABASE_URL": db.url}
    create = ("token", "create", "--email", "ann@example.com")
    created = await acli(*create, env=env)
    assert created.returncode == 0, created.stderr
    customer_token = created.stdout.split()[-1]

    refused = await acli(*create, "--role", "admin", env=env)
    assert_one_line_error(
        refused,
        "ann@example.com is a customer",
        "storefront user set-role --email ann@example.com admin",
    )
    listed = await acli("token", "list", "--email", "ann@example.com", env=env)
    assert len(listed.stdout.splitlines()) == 1, "the refused create minted a token"

    # The same role is no change: allowed.
    same = await acli(*create, "--role", "customer", env=env)
    assert same.returncode == 0, same.stderr

    async with serve(db, AUTH_CACHE_SECONDS="0") as api:
        before = await api.data(VIEWER, token=customer_token)
        changed = await acli("user", "set-role", "--email", "Ann@Example.com", "admin", env=env)
        assert changed.returncode == 0, changed.stderr
        assert changed.stdout.strip() == "Changed the role of ann@example.com: customer -> admin."
        after = await api.data(VIEWER, token=customer_token)
    assert before["viewer"]["role"] == "CUSTOMER"
    assert after["viewer"]["role"] == "ADMIN"

    again = await acli("user", "set-role", "--email", "ann@example.com", "admin", env=env)
    assert again.returncode == 0
    assert "already admin" in again.stdout
    admin = await acli(*create, "--role", "admin", env=env)
    assert admin.returncode == 0, admin.stderr
    assert "(admin)" in admin.stdout


async def test_unknown_emails_are_named(db: Database) -> None:
    env = {"DATABASE_URL": db.url}
    listed = await acli("token", "list", "--email", "nobody@example.com", env=env)
    assert_one_line_error(listed, "No user with the email nobody@example.com")
    role = await acli("user", "set-role", "--email", "nobody@example.com", "admin", env=env)
    assert_one_line_error(role, "No user with the email nobody@example.com")
    bad = await acli("user", "set-role", "--email", "nobody@example.com", "root", env=env)
    assert bad.returncode == 2
    assert "'root' is not one of 'customer', 'admin'" in bad.stderr


async def test_a_user_without_tokens_is_told_apart_from_an_unknown_one(
    db: Database, factory: Factory
) -> None:
    await factory.user(email="bo@example.com")
    listed = await acli("token", "list", "--email", "bo@example.com", env={"DATABASE_URL": db.url})
    assert listed.returncode == 0
    assert listed.stdout == ""
    assert listed.stderr.strip() == "bo@example.com has no tokens."
