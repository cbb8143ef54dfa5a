"""The seam between persisted queries and where they are kept.

Two kinds of documents live in a `PersistedQueryStore`:

- automatic persisted queries (APQ), registered by clients at run time under the
  SHA-256 of their text, kept for a while (the store may expire or evict them),
  each client registering at most a quota of new documents per window;
- trusted documents, imported by an operator from a build's manifest, kept under
  their manifest id until removed (never expired, never evicted).

`server/persisted/stores.py` implements the Protocol in process and in Redis.
A store that cannot reach its backend raises PersistedQueryStoreUnavailable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol


def sha256_hex(text: str) -> str:
    """The lowercase hex SHA-256 of `text` as UTF-8: an APQ hash."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TrustedDocument:
    """A document of a client build's manifest, known by its id in that manifest."""

    id: str
    document: str
    name: str | None = None
    sha256: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.sha256:
            object.__setattr__(self, "sha256", sha256_hex(self.document))


class PersistedQueryStoreUnavailable(Exception):
    """The store cannot be reached (e.g. Redis is down, or slower than its bound).

    The store has logged the outage; callers answer a lookup with a 503 and skip
    writes the request does not depend on.
    """


class PersistedQueryStore(Protocol):
    """Where automatic persisted queries and trusted documents are kept.

    Hashes are lowercase hex SHA-256. A trusted document is found by its id and
    also by the SHA-256 of its text (ids of Relay manifests are not SHA-256).
    """

    async def get_automatic(self, sha256: str) -> str | None:
        """The text registered under `sha256`, None when unknown or expired."""
        ...

    async def put_automatic(self, sha256: str, document: str, *, registrant: str) -> bool:
        """Register `document` under `sha256` (the caller has checked the hash) for
        `registrant` (a client key, e.g. `ip:203.0.113.7`); whether it is now stored.

        A document already stored is left as it is and costs no quota; a new one
        counts against the registrant's quota for the current window, and is not
        stored once that is spent.
        """
        ...

    async def get_trusted(self, key: str) -> TrustedDocument | None:
        """The trusted document whose id or SHA-256 is `key`."""
        ...

    async def put_trusted(self, documents: Iterable[TrustedDocument]) -> None:
        """Add or replace trusted documents, all at once."""
        ...

    async def list_trusted(self) -> list[TrustedDocument]:
        """Every trusted document, ordered by id."""
        ...

    async def remove_trusted(self, ids: Iterable[str]) -> int:
        """Remove trusted documents by id; how many there were."""
        ...

    async def note_unknown(self, sha256: str) -> int:
        """Count one sighting of a document that is not trusted; the count so far.

        Returns 0 once the store tracks as many distinct unknown documents as it
        will (so an audit cannot be used to fill memory).
        """
        ...

    async def unknown_counts(self) -> dict[str, int]:
        """The sightings of each untrusted document noted so far, by SHA-256."""
        ...

    async def close(self) -> None: ...
