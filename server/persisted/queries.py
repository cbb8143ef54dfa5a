"""Persisted queries: which document a request runs, by hash, by id or as text.

Automatic persisted queries (APQ) follow Apollo's protocol, which Apollo Client's
persisted-queries link expects to the letter: a request carries
`extensions.persistedQuery = {"version": 1, "sha256Hash": "<hex>"}`, with or without
the `query` text. Trusted documents are imported from client manifests
(`storefront persisted import`) and may be asked for by the same hash or by a
top-level `documentId` (GraphQL Code Generator's client preset, and the
GraphQL-over-HTTP persisted-documents proposal).

Modes (setting PERSISTED_QUERIES):
    apq      any document runs; APQ registration on; trusted documents found by hash too
    trusted  only trusted documents run (admins may send any when allowed); no APQ
    audit    as `apq`, and every document that is not trusted is counted and logged
    off      no persisted queries: a hash is PERSISTED_QUERY_NOT_SUPPORTED

Resolving a request's document registers nothing: an APQ registration (hash
with text) is stored by `register`, which the view calls only once the request
was charged to its client's bucket, so storing costs what running costs and a
refused request (429, 405...) stores nothing. What a client may make the store
keep is bounded: a document over `max_document_bytes` runs but is not stored,
and the store counts each client's new registrations against a quota per window.

Example:
    persisted = PersistedQueries(executor=executor, store=store, mode=PersistedQueryMode.APQ)
    document = await persisted.document(graphql_request, viewer=viewer, client=client)
    ...  # limits, price, charge the bucket
    await persisted.register(graphql_request, document, registrant="ip:203.0.113.7")
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cachetools import LRUCache

from resolvers.viewer import Viewer
from schema import Document, Executor
from schema.errors import BAD_USER_INPUT
from server.http.graphql_request import GraphQLRequest
from server.persisted.protocol import (
    PersistedQueryStore,
    PersistedQueryStoreUnavailable,
    TrustedDocument,
    sha256_hex,
)

logger = logging.getLogger("storefront.persisted")

PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
PERSISTED_QUERY_NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
PERSISTED_QUERY_NOT_IN_LIST = "PERSISTED_QUERY_NOT_IN_LIST"
PERSISTED_QUERY_MISMATCH = "PERSISTED_QUERY_MISMATCH"
PERSISTED_QUERY_STORE_UNAVAILABLE = "PERSISTED_QUERY_STORE_UNAVAILABLE"

# Apollo Server's header for "not found": the retry that registers the document
# must reach the server, and no cache may keep the miss.
NO_CACHE = {"Cache-Control": "private, no-cache, must-revalidate"}

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_DOCUMENT_ID = re.compile(r"^[A-Za-z0-9_.:/+=-]{1,256}$")
DEFAULT_MAX_DOCUMENT_BYTES = 20 * 1024


class PersistedQueryMode(StrEnum):
    APQ = "apq"
    TRUSTED = "trusted"
    AUDIT = "audit"
    OFF = "off"


class PersistedQueryError(Exception):
    """The request names a document that cannot be run; nothing was executed."""

    def __init__(
        self, message: str, code: str, *, status: int, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.headers = headers or {}


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Who built the client, from Apollo's `apollographql-client-name`/`-version` headers."""

    name: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class _Reference:
    """What a request names: an APQ hash (`sha256`) or a trusted document id."""

    key: str
    is_sha256: bool


def reference_of(request: GraphQLRequest) -> _Reference | None:
    """The persisted document a request refers to; PersistedQueryError when malformed."""
    extension = (request.extensions or {}).get("persistedQuery")
    if extension is not None:
        if not isinstance(extension, dict):
            raise _bad("`extensions.persistedQuery` must be an object.")
        if extension.get("version") != 1:
            raise _bad("Unsupported persisted query version: only version 1 is.")
        sha256 = extension.get("sha256Hash")
        if not isinstance(sha256, str) or not _SHA256.match(sha256):
            raise _bad("`sha256Hash` must be a SHA-256 as 64 hexadecimal digits.")
        return _Reference(sha256.lower(), is_sha256=True)
    if request.document_id is not None:
        document_id = request.document_id
        if not _DOCUMENT_ID.match(document_id):
            raise _bad("`documentId` is not a valid document id.")
        if document_id.startswith("sha256:") and _SHA256.match(document_id[7:]):
            return _Reference(document_id[7:].lower(), is_sha256=True)
        return _Reference(document_id, is_sha256=False)
    return None


class PersistedQueries:
    """Turns a request into a parsed, validated document under the configured mode.

    Documents found by hash are kept parsed and validated in process (bounded
    LRU by SHA-256), so a persisted hit skips parsing and validation.
    """

    def __init__(
        self,
        *,
        executor: Executor,
        store: PersistedQueryStore,
        mode: PersistedQueryMode = PersistedQueryMode.APQ,
        allow_admin: bool = False,
        cache_size: int = 1000,
        max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
    ) -> None:
        self.executor = executor
        self.store = store
        self.mode = mode
        self.allow_admin = allow_admin
        self.max_document_bytes = max_document_bytes
        # The documents this process knows the store holds (registered or trusted),
        # by SHA-256. Not the executor's document cache: that one holds every text
        # parsed, registered or not, and a hash found there would skip the store.
        self._documents: LRUCache[str, Document] = LRUCache(maxsize=cache_size)

    @property
    def cached_documents(self) -> int:
        """How many parsed, validated documents are kept by hash (at most `cache_size`)."""
        return len(self._documents)

    async def document(
        self,
        request: GraphQLRequest,
        *,
        viewer: Callable[[], Awaitable[Viewer]],
        client: ClientInfo = ClientInfo(),
    ) -> Document:
        """The document to run. Raises PersistedQueryError, or RequestError when invalid.

        `viewer` is awaited only when the answer depends on it (trusted mode, admins).
        A store that cannot be reached (Redis down or hung) is a 503
        PERSISTED_QUERY_STORE_UNAVAILABLE when a hash must be looked up; audit
        counting is skipped instead. Nothing is registered here (see `register`).
        """
        try:
            return await self._document(request, viewer=viewer, client=client)
        except PersistedQueryStoreUnavailable:  # logged by the store
            raise PersistedQueryError(
                "The persisted-query store is unavailable; try again shortly.",
                PERSISTED_QUERY_STORE_UNAVAILABLE,
                status=503,
            ) from None

    async def _document(
        self,
        request: GraphQLRequest,
        *,
        viewer: Callable[[], Awaitable[Viewer]],
        client: ClientInfo,
    ) -> Document:
        reference = reference_of(request)
        if self.mode is PersistedQueryMode.OFF:
            if reference is not None:
                raise PersistedQueryError(
                    "PersistedQueryNotSupported", PERSISTED_QUERY_NOT_SUPPORTED, status=400
                )
            return self._parse(_query(request))
        if (
            reference is not None
            and reference.is_sha256
            and request.query is not None
            and sha256_hex(request.query) != reference.key
        ):
            raise PersistedQueryError(
                "provided sha does not match query", PERSISTED_QUERY_MISMATCH, status=400
            )
        if self.mode is PersistedQueryMode.TRUSTED:
            return await self._trusted(request, reference, viewer)
        if reference is None:
            document = self._parse(_query(request))
        elif request.query is not None:
            document = self._parse(request.query)
        else:
            document = await self._lookup(reference)
        if self.mode is PersistedQueryMode.AUDIT:
            # A count the request does not depend on: skipped while the store is down.
            with contextlib.suppress(PersistedQueryStoreUnavailable):
                await self._audit(request, document, client)
        return document

    async def register(
        self, request: GraphQLRequest, document: Document, *, registrant: str
    ) -> None:
        """Stores the APQ registration `request` carries (a hash with its text, whose
        `document` is resolved), charged to `registrant` (the request's client key).

        Call it only once the request was charged to its bucket. Best effort: it
        raises nothing when the store is unavailable, and skips the write in modes
        without APQ, when the hash is already known in this process, when the text
        is over `max_document_bytes` (it ran, but the client keeps sending it), or
        when the store refuses it (the registrant's quota is spent).
        """
        if self.mode not in (PersistedQueryMode.APQ, PersistedQueryMode.AUDIT):
            return
        query, sha256 = request.query, document.sha256
        try:
            reference = reference_of(request)
        except PersistedQueryError:  # document() refused it already
            return
        if query is None or reference is None or reference.key != sha256:
            return  # not a registration: no hash, or an id that is not this text's
        if self._cached(sha256) is not None or len(query.encode()) > self.max_document_bytes:
            return
        try:
            stored = await self.store.put_automatic(sha256, query, registrant=registrant)
        except PersistedQueryStoreUnavailable:  # logged by the store
            return
        if stored:
            self._remember(document)

    async def _lookup(self, reference: _Reference) -> Document:
        cached = self._cached(reference.key) if reference.is_sha256 else None
        if cached is not None:
            return cached
        text = await self.store.get_automatic(reference.key) if reference.is_sha256 else None
        if text is None:
            trusted = await self.store.get_trusted(reference.key)
            if trusted is None:
                raise _not_found()
            return self._trusted_document(trusted)
        # The store may be shared: trust its text only if it still hashes to the key.
        if sha256_hex(text) != reference.key:
            raise _not_found()
        document = self._parse(text)
        self._remember(document)
        return document

    async def _trusted(
        self,
        request: GraphQLRequest,
        reference: _Reference | None,
        viewer: Callable[[], Awaitable[Viewer]],
    ) -> Document:
        key = reference.key if reference is not None else sha256_hex(_query(request))
        trusted = await self.store.get_trusted(key)
        if trusted is not None:
            if request.query is not None and request.query != trusted.document:
                raise PersistedQueryError(
                    "The query text is not the trusted document's.",
                    PERSISTED_QUERY_MISMATCH,
                    status=400,
                )
            return self._trusted_document(trusted)
        if request.query is not None and self.allow_admin and (await viewer()).is_admin:
            return self._parse(request.query)
        raise PersistedQueryError(
            "This server runs only trusted documents, and this is not one of them.",
            PERSISTED_QUERY_NOT_IN_LIST,
            status=400,
        )

    async def _audit(self, request: GraphQLRequest, document: Document, client: ClientInfo) -> None:
        if await self.store.get_trusted(document.sha256) is not None:
            return
        count = await self.store.note_unknown(document.sha256)
        # Each document is logged on its 1st, 10th, 100th... sighting, not on every request.
        if count > 0 and str(count).rstrip("0") == "1":
            logger.warning(
                "untrusted document %s (operation %s) from client %s version %s, seen %d times",
                document.sha256,
                request.operation_name,
                client.name or "-",
                client.version or "-",
                count,
            )

    def _trusted_document(self, trusted: TrustedDocument) -> Document:
        cached = self._cached(trusted.sha256)
        if cached is not None:
            return cached
        document = self._parse(trusted.document)
        self._remember(document)
        return document

    def _parse(self, text: str) -> Document:
        document = self.executor.parse(text)
        self.executor.validate(document)
        return document

    def _cached(self, sha256: str) -> Document | None:
        return self._documents.get(sha256)  # a hit becomes the most recently used

    def _remember(self, document: Document) -> None:
        if self._documents.maxsize > 0:  # cachetools refuses any item when maxsize is 0
            self._documents[document.sha256] = document


def client_info(headers: Any) -> ClientInfo:
    """The client's name and version from request headers (a Starlette `Headers`)."""
    return ClientInfo(
        name=headers.get("apollographql-client-name"),
        version=headers.get("apollographql-client-version"),
    )


def _query(request: GraphQLRequest) -> str:
    if request.query is None:  # reference_of() saw neither a hash nor an id
        raise _bad("The request has no `query` (a GraphQL document string).")
    return request.query


def _not_found() -> PersistedQueryError:
    return PersistedQueryError(
        "PersistedQueryNotFound", PERSISTED_QUERY_NOT_FOUND, status=200, headers=NO_CACHE
    )


def _bad(message: str) -> PersistedQueryError:
    return PersistedQueryError(message, BAD_USER_INPUT, status=400)
