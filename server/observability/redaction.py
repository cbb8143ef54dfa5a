"""Secrets never reach a log line: `RedactSecrets`, a filter on every handler.

No code logs a token, a webhook secret or a password on purpose; this filter is
the net under the mistakes (an exception message quoting a URL, a client
pasting a token where a name goes). It rewrites, before any formatter runs, a
record's message, arguments, extra fields and traceback text:

- a URL's password (`scheme://user:secret@host` -> `scheme://user:[REDACTED]@host`);
- `Bearer <token>`, a Storefront token (`sf_…`), a webhook signing secret (`whsec_…`);
- `password=…`, `secret: …`, `token=…` and their kin as key/value text;
- the literal passwords of DATABASE_URL and REDIS_URL (`literal_secrets`), wherever
  they appear, when long enough not to hit ordinary words.

Example:
    redact("cannot connect to postgresql://app:hunter22@db/shop")
    # -> "cannot connect to postgresql://app:[REDACTED]@db/shop"
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

REDACTED = "[REDACTED]"
MIN_LITERAL = 8  # shorter literal passwords are left to the patterns

_SOURCES = (
    r"(?<=://)([^\s:/@]*):[^\s@/]+@",
    r"(?i:(\bbearer\s+))[^\s\"',;]+",
    r"\b(sf_|whsec_)[A-Za-z0-9+/=_-]{6,}",
    r"(?<![A-Za-z0-9])(?i:(password|passwd|pwd|secret|api[_-]?key|access[_-]?token|token))"
    r"(\\?[\"']?\s*[=:]\s*\\?[\"']?)[^\s\"',;&)}\\]+",
)
_PATTERNS = tuple(re.compile(source) for source in _SOURCES)
_REPLACEMENTS = (rf"\1:{REDACTED}@", rf"\1{REDACTED}", rf"\1{REDACTED}", rf"\1\2{REDACTED}")
# One scan finds whether any pattern may apply: most text has nothing to redact.
_ANY = re.compile("|".join(f"(?:{source})" for source in _SOURCES))
# A substring of every match of _SOURCES, in text casefolded (as `(?i:...)` matches
# U+017F for `s` and U+212A for `k`, casefold maps them so): text without one needs no
# regex scan, which cost ten times these substring checks on a request's line.
_CLUES = ("://", "bearer", "sf_", "whsec_", "pass", "pwd", "secret", "key", "token")
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}


def url_password(url: str | None) -> str | None:
    """The password in a URL's user info, if any."""
    if not url:
        return None
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def _may_match(text: str) -> bool:
    """Whether a pattern may match `text`: it holds a clue, and the patterns find one."""
    folded = text.casefold()
    for clue in _CLUES:
        if clue in folded:
            return _ANY.search(text) is not None
    return False


class Redactor:
    """Rewrites secrets in text: the patterns above, and literal secrets given."""

    def __init__(self, literals: Iterable[str | None] = ()) -> None:
        self.literals = tuple(
            sorted({s for s in literals if s and len(s) >= MIN_LITERAL}, key=len, reverse=True)
        )

    def finds(self, text: str) -> bool:
        """Whether `text` may hold something to redact (a literal, or a pattern's match)."""
        return any(literal in text for literal in self.literals) or _may_match(text)

    def __call__(self, text: str) -> str:
        for literal in self.literals:
            if literal in text:
                text = text.replace(literal, REDACTED)
        if not _may_match(text):  # the common case: nothing to rewrite
            return text
        for pattern, replacement in zip(_PATTERNS, _REPLACEMENTS, strict=True):
            text = pattern.sub(replacement, text)
        return text

    def value(self, value: object) -> object:
        if isinstance(value, str):
            return self(value)
        if value is None or isinstance(value, int | float):
            return value
        text = str(value)  # rendered with %s or %r later: redact its text now
        redacted = self(text)
        return value if redacted == text else redacted


class RedactSecrets(logging.Filter):
    """Redacts a record in place; idempotent, so a record passing several handlers
    is unharmed. A traceback is rendered here, redacted, and kept as `exc_text`."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redact = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self.redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self.redact.value(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: self.redact.value(v) for k, v in record.args.items()}
        extras = {
            key: value
            for key, value in record.__dict__.items()
            if key not in _STANDARD and isinstance(value, str)
        }
        # One scan of them all first, as most lines hold no secret: one in a field is
        # found in the fields' joined text too (a match across a joint only costs
        # the scan of each field).
        if self.redact.finds("\n".join(extras.values())):
            for key, value in extras.items():
                record.__dict__[key] = self.redact(value)
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None  # formatters would render it again, unredacted
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True
