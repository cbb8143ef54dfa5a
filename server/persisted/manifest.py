"""Reading trusted documents from what client builds produce.

Three shapes are accepted:

- an Apollo persisted-query manifest (`generate-persisted-query-manifest`):
  `{"format": "apollo-persisted-query-manifest", "version": 1,
    "operations": [{"id", "name", "type", "body"}]}`;
- a Relay / GraphQL Code Generator map of ids to documents: `{"<id>": "<document>"}`;
- a folder of `.graphql` files (or one file): each file is a document whose id
  is the SHA-256 of its text, as an APQ client would send it.

Every document is parsed and validated against the schema, and, given a
maximum, priced with its default variables; one invalid or too costly document
fails the whole import, naming the document and its error.

Example:
    documents = load_manifest(Path("persisted-query-manifest.json"), schema=schema)
    await store.put_trusted(documents)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
    validate,
    value_from_ast,
)
from graphql.utilities import type_from_ast

from schema.cost import CostAnalysis, QueryTooComplex
from schema.executor import Document
from server.persisted.protocol import TrustedDocument, sha256_hex

APOLLO_FORMAT = "apollo-persisted-query-manifest"
MAX_ID_LENGTH = 256


class ManifestError(ValueError):
    """The manifest cannot be imported; the message names every bad document."""


def load_manifest(
    path: Path, *, schema: GraphQLSchema, max_cost: int | None = None
) -> list[TrustedDocument]:
    """The valid trusted documents of `path` (a manifest file, a .graphql file or a folder).

    With `max_cost`, an operation costing more with its default variables is refused.
    """
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.graphql") if p.is_file())
        if not files:
            raise ManifestError(f"{path}: no .graphql files in this folder")
        texts = [(_relative(f, path), _read_text(f)) for f in files]
        entries = [(sha256_hex(text), text, name) for name, text in texts]
        return check_documents(entries, schema, max_cost)
    if path.suffix in (".graphql", ".gql"):
        text = _read_text(path)
        return check_documents([(sha256_hex(text), text, path.name)], schema, max_cost)
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as error:
        raise ManifestError(f"{path}: {error.strerror or error}") from None
    except orjson.JSONDecodeError as error:
        raise ManifestError(f"{path}: not valid JSON ({error})") from None
    return parse_manifest(data, schema=schema, source=str(path), max_cost=max_cost)


def parse_manifest(
    data: Any, *, schema: GraphQLSchema, source: str, max_cost: int | None = None
) -> list[TrustedDocument]:
    """The trusted documents of a decoded Apollo manifest or {id: document} map."""
    if isinstance(data, dict) and data.get("format") == APOLLO_FORMAT:
        return check_documents(_apollo_entries(data, source), schema, max_cost)
    if isinstance(data, dict) and data and all(isinstance(v, str) for v in data.values()):
        return check_documents(((str(k), v, None) for k, v in data.items()), schema, max_cost)
    raise ManifestError(
        f"{source}: neither an Apollo persisted-query manifest (version 1) nor a JSON object"
        " mapping ids to documents"
    )


def _apollo_entries(data: dict[str, Any], source: str) -> Iterator[tuple[str, str, str | None]]:
    if data.get("version") != 1:
        raise ManifestError(f"{source}: unsupported manifest version {data.get('version')!r}")
    operations = data.get("operations")
    if not isinstance(operations, list):
        raise ManifestError(f"{source}: `operations` must be a list")
    for index, operation in enumerate(operations):
        if not isinstance(operation, dict):
            raise ManifestError(f"{source}: operations[{index}] is not an object")
        document_id, body = operation.get("id"), operation.get("body")
        name = operation.get("name")
        if not isinstance(document_id, str) or not isinstance(body, str):
            label = name if isinstance(name, str) else f"operations[{index}]"
            raise ManifestError(f"{source}: {label} needs a string `id` and `body`")
        yield document_id, body, name if isinstance(name, str) else None


def check_documents(
    entries: Iterable[tuple[str, str, str | None]],
    schema: GraphQLSchema,
    max_cost: int | None = None,
) -> list[TrustedDocument]:
    """Parse, validate (and price) every (id, document, name); ManifestError listing failures."""
    pricing = CostAnalysis(schema, max_cost=max_cost) if max_cost is not None else None
    documents: list[TrustedDocument] = []
    problems: list[str] = []
    for document_id, text, name in entries:
        label = f"{name} (id {document_id})" if name else f"id {document_id}"
        if not document_id or len(document_id) > MAX_ID_LENGTH:
            problems.append(f"{label}: an id must have 1 to {MAX_ID_LENGTH} characters")
            continue
        try:
            ast = parse(text)
        except GraphQLError as error:
            problems.append(f"{label}: {error.message} {_where(error)}".rstrip())
            continue
        if name is None:
            name = _operation_names(ast.definitions)
            label = f"{name} (id {document_id})" if name else label
        errors = validate(schema, ast)
        if errors:
            problems.extend(f"{label}: {e.message} {_where(e)}".rstrip() for e in errors)
            continue
        too_costly = _over_cost(pricing, ast, text) if pricing is not None else None
        if too_costly is not None:
            problems.append(f"{label}: {too_costly}")
            continue
        documents.append(TrustedDocument(id=document_id, document=text, name=name))
    if problems:
        raise ManifestError("invalid documents, nothing imported:\n  " + "\n  ".join(problems))
    if not documents:
        raise ManifestError("the manifest holds no documents")
    return documents


def _over_cost(pricing: CostAnalysis, ast: DocumentNode, text: str) -> str | None:
    """Why an operation of the document costs too much with its default variables, if one does."""
    document = Document(ast, sha256_hex(text))
    for operation in ast.definitions:
        if not isinstance(operation, OperationDefinitionNode):
            continue
        defaults: dict[str, Any] = {}
        for definition in operation.variable_definitions or ():
            kind = type_from_ast(pricing.schema, definition.type)
            if definition.default_value is not None and kind is not None:
                defaults[definition.variable.name.value] = value_from_ast(
                    definition.default_value,
                    kind,  # type: ignore[arg-type]
                )
        try:
            pricing.price(document, operation, defaults)
        except QueryTooComplex as error:
            name = operation.name.value if operation.name else "the operation"
            return (
                f"{name} costs {error.requested} with its default variables;"
                f" the maximum (MAX_QUERY_COST) is {error.maximum}"
            )
    return None


def _operation_names(definitions: Iterable[Any]) -> str | None:
    names = [
        d.name.value
        for d in definitions
        if isinstance(d, OperationDefinitionNode) and d.name is not None
    ]
    return ",".join(names) or None


def _where(error: GraphQLError) -> str:
    if not error.locations:
        return ""
    location = error.locations[0]
    return f"(line {location.line}, column {location.column})"


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ManifestError(f"{path}: {error}") from None


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()
