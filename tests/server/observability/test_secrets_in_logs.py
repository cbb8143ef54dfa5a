"""No bearer token, webhook secret or database password reaches a log line.

A real `storefront serve` over PostgreSQL with a password in DATABASE_URL,
through a proxy the test cuts, at LOG_LEVEL=debug: requests carry a real token,
an unknown one, and a webhook secret planted where clients put text (a header,
a variable, the operation name, which is logged); then the database goes away
and the server logs its errors and tracebacks. None of the secrets may appear.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from resolvers.tokens import create_token
from server.observability.log_config import log_filters
from server.observability.log_format import formatter
from server.observability.redaction import _ANY, REDACTED, Redactor, RedactSecrets, _may_match
from tests.conftest import Database
from tests.factories import Factory
from tests.live_server import live_server
from tests.server.observability.log_lines import output_with, records
from tests.tcp_proxy import TcpProxy

PASSWORD = "pw-" + secrets.token_urlsafe(12)
WEBHOOK_SECRET = "whsec_" + secrets.token_hex(16)


@pytest.fixture
def proxy(db: Database) -> Iterator[TcpProxy]:
    if db.backend != "postgresql":
        pytest.skip("a password in DATABASE_URL and an outage: PostgreSQL only")
    url = make_url(os.environ["TEST_DATABASE_URL"])
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield proxy


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_tokens_secrets_and_passwords_never_reach_a_log_line(
    db: Database, factory: Factory, proxy: TcpProxy, log_format: str
) -> None:
    await factory.category(name="Lamps")
    token = (await create_token(sessionmaker=db.sessionmaker, email="a@example.com")).token
    unknown = "sf_" + secrets.token_urlsafe(24)
    url = make_url(os.environ["TEST_DATABASE_URL"]).set(
        host="127.0.0.1", port=proxy.port, password=PASSWORD
    )
    env = {
        "DATABASE_URL": url.render_as_string(hide_password=False),
        "LOG_LEVEL": "debug",
        "LOG_FORMAT": log_format,
        "PERSISTED_QUERIES": "audit",  # logs each request's operation name
    }
    planted = {
        "query": f"query {WEBHOOK_SECRET}($s: String) {{"
        " products(first: 1, filter: {search: $s}) { nodes { name } } }",
        "variables": {"s": WEBHOOK_SECRET},
    }
    with live_server(env) as server:

        def post(bearer: str) -> httpx.Response:
            headers = {"Authorization": f"Bearer {bearer}", "X-Webhook-Secret": WEBHOOK_SECRET}
            return httpx.post(server.graphql, json=planted, headers=headers, timeout=15)

        signed_in = post(token)
        assert signed_in.status_code == 200, signed_in.text
        assert "errors" not in signed_in.json(), signed_in.text
        assert post(unknown).status_code in (200, 401)
        proxy.cut()
        assert _health(server.url).status_code == 503
        outage = post("sf_" + secrets.token_urlsafe(24))  # a token not yet known: must ask
        assert outage.status_code == 503, outage.text
        output = output_with(server, outage)

    assert "Traceback" in output or "exc_info" in output  # the errors were logged, in full
    for secret in (PASSWORD, token, unknown, WEBHOOK_SECRET):
        assert secret not in output
    # The planted secret did reach the logging calls, and was redacted there.
    lines = [line for line in records(output, log_format) if line.get("message") == "request"]
    request_line = next(
        line for line in lines if line["request_id"] == signed_in.headers["x-request-id"]
    )
    assert request_line["operation_name"] == f"whsec_{REDACTED}"
    assert request_line["client_id"].startswith("user:")


def _health(url: str) -> httpx.Response:
    return httpx.get(f"{url}/health", timeout=15)


class _Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured() -> Iterator[_Captured]:
    handler = _Captured()
    logger = logging.getLogger("tests.secrets")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_password_in_an_exception_is_redacted_from_its_traceback(
    captured: _Captured, log_format: str
) -> None:
    # As if a driver quoted its URL in an error: the handler's filters redact the traceback,
    # the message, its arguments and extra fields, and the password wherever it appears.
    url = f"postgresql://app:{PASSWORD}@db.internal:5432/shop"
    redactor = Redactor([PASSWORD])
    captured.setFormatter(formatter(log_format))
    for log_filter in log_filters(redactor):
        captured.addFilter(log_filter)
    logger = logging.getLogger("tests.secrets")
    try:
        raise ConnectionError(f"cannot reach {url} (password {PASSWORD})")
    except ConnectionError:
        logger.error("failed: %s", url, exc_info=True, extra={"dsn": url})
    [line] = captured.lines
    assert "ConnectionError: cannot reach postgresql://app:[REDACTED]@db.internal" in line.replace(
        "\\n", "\n"
    )
    assert PASSWORD not in line
    assert "Bearer" not in line


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("redis://:s3cretpass@cache:6379/0", f"redis://:{REDACTED}@cache:6379/0"),
        ("Authorization: Bearer abc.def-ghi", f"Authorization: Bearer {REDACTED}"),
        ("token sf_AbCdEf123456-_x", f"token sf_{REDACTED}"),
        ("signing with whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", f"signing with whsec_{REDACTED}"),
        ("password=hunter22 user=app", f"password={REDACTED} user=app"),
        ('{"client_secret": "abc123"}', f'{{"client_secret": "{REDACTED}"}}'),
        ("GET /graphql 200 in 3 ms", "GET /graphql 200 in 3 ms"),
        ("Token authentication failed", "Token authentication failed"),
    ],
)
def test_secret_looking_text_is_redacted_and_nothing_else(text: str, redacted: str) -> None:
    assert Redactor()(text) == redacted


# Characters the patterns turn on, with the ones `(?i:...)` matches for ASCII letters.
_CLUE_ALPHABET = st.sampled_from(
    [*"abcdeiknoprstwyABKPSTW:/@=_- \n\"'", "\u017f", "\u212a", "\u0130", "\u0131", "\u00df"]
)


@settings(max_examples=3000, deadline=None)
@given(st.text(_CLUE_ALPHABET, max_size=40))
def test_text_the_patterns_would_rewrite_is_never_skipped_by_the_quick_check(text: str) -> None:
    # The substring check in front of the regex scan may let through text with nothing
    # to redact, never hold back text with something.
    if _ANY.search(text) is not None:
        assert _may_match(text), text


@pytest.mark.parametrize("field", ["operation_name", "path", "client_id"])
@pytest.mark.parametrize(
    "secret",
    ["Bearer abc.def", "sf_AbCdEf123456", "\u017fecret=hunter22", PASSWORD],
    ids=["bearer", "storefront-token", "long-s-secret", "literal-password"],
)
def test_a_secret_in_any_one_extra_field_is_redacted(field: str, secret: str) -> None:
    # The filter scans a record's fields joined first, then each field when that finds one.
    record = logging.LogRecord(
        "storefront.requests", logging.INFO, __file__, 1, "request", (), None
    )
    fields = {"method": "POST", "path": "/graphql", "operation_name": "Catalog", "client_id": "u"}
    record.__dict__.update(fields | {field: f"x {secret} y"})
    RedactSecrets(Redactor([PASSWORD])).filter(record)
    assert REDACTED in record.__dict__[field]
    assert secret.split()[-1].split("=")[-1] not in record.__dict__[field]
    assert all(record.__dict__[k] == v for k, v in fields.items() if k != field)
