"""Importing trusted documents: Apollo manifests, {id: document} maps, .graphql folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from graphql import GraphQLSchema

from schema import create_schema
from server.persisted.manifest import ManifestError, load_manifest
from server.persisted.protocol import sha256_hex

CATALOG = "query Catalog { products(first: 2) { nodes { name } } }"
VIEWER = "query Me { viewer { email } }"


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return create_schema()._schema


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def apollo(*operations: dict[str, str]) -> dict[str, object]:
    return {"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations}


def test_apollo_manifest(tmp_path: Path, schema: GraphQLSchema) -> None:
    manifest = apollo(
        {"id": sha256_hex(CATALOG), "name": "Catalog", "type": "query", "body": CATALOG},
        {"id": sha256_hex(VIEWER), "name": "Me", "type": "query", "body": VIEWER},
    )

    documents = load_manifest(write(tmp_path / "m.json", manifest), schema=schema)

    assert [(d.id, d.name, d.document) for d in documents] == [
        (sha256_hex(CATALOG), "Catalog", CATALOG),
        (sha256_hex(VIEWER), "Me", VIEWER),
    ]
    assert all(d.sha256 == d.id for d in documents)


def test_id_to_document_map(tmp_path: Path, schema: GraphQLSchema) -> None:
    documents = load_manifest(
        write(tmp_path / "relay.json", {"a1b2": CATALOG, "c3d4": VIEWER}), schema=schema
    )

    assert [(d.id, d.name, d.sha256) for d in documents] == [
        ("a1b2", "Catalog", sha256_hex(CATALOG)),
        ("c3d4", "Me", sha256_hex(VIEWER)),
    ]


def test_folder_of_graphql_files(tmp_path: Path, schema: GraphQLSchema) -> None:
    (tmp_path / "nested").mkdir()
    (tmp_path / "catalog.graphql").write_text(CATALOG)
    (tmp_path / "nested" / "me.graphql").write_text(VIEWER + "\n")
    (tmp_path / "notes.txt").write_text("not a document")

    documents = load_manifest(tmp_path, schema=schema)

    assert {d.name: d.id for d in documents} == {
        "catalog.graphql": sha256_hex(CATALOG),
        "nested/me.graphql": sha256_hex(VIEWER + "\n"),
    }


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("query Broken { products { nodes { name }", "Syntax Error"),
        ("query Wrong { products { nodes { colour } } }", "Cannot query field 'colour'"),
        ("fragment F on Product { name }", "never used"),
    ],
)
def test_an_invalid_document_fails_the_import_naming_it(
    tmp_path: Path, schema: GraphQLSchema, body: str, fragment: str
) -> None:
    manifest = apollo(
        {"id": sha256_hex(CATALOG), "name": "Catalog", "type": "query", "body": CATALOG},
        {"id": "bad-id", "name": "TheBadOne", "type": "query", "body": body},
    )

    with pytest.raises(ManifestError) as raised:
        load_manifest(write(tmp_path / "m.json", manifest), schema=schema)

    message = str(raised.value)
    assert "TheBadOne (id bad-id)" in message
    assert fragment in message
    assert "Catalog" not in message  # only the bad one is named


def test_an_invalid_file_in_a_folder_is_named(tmp_path: Path, schema: GraphQLSchema) -> None:
    (tmp_path / "good.graphql").write_text(CATALOG)
    (tmp_path / "bad.graphql").write_text("{ nope }")

    with pytest.raises(ManifestError, match=r"bad\.graphql .*Cannot query field 'nope'"):
        load_manifest(tmp_path, schema=schema)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([CATALOG], "neither an Apollo"),
        ({"format": "apollo-persisted-query-manifest", "version": 2}, "version 2"),
        ({"format": "apollo-persisted-query-manifest", "version": 1, "operations": {}}, "list"),
        (apollo({"id": "x", "name": "NoBody"}), "NoBody needs a string"),
        ({}, "neither an Apollo"),
        ({"x": 1}, "neither an Apollo"),
    ],
)
def test_malformed_manifests_are_refused(
    tmp_path: Path, schema: GraphQLSchema, data: object, fragment: str
) -> None:
    with pytest.raises(ManifestError, match=fragment):
        load_manifest(write(tmp_path / "m.json", data), schema=schema)


def test_files_that_are_not_json_or_are_empty_folders(
    tmp_path: Path, schema: GraphQLSchema
) -> None:
    (tmp_path / "m.json").write_text("{oops")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_manifest(tmp_path / "m.json", schema=schema)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError, match=r"no \.graphql files"):
        load_manifest(tmp_path / "empty", schema=schema)


@pytest.mark.parametrize(
    "body",
    [
        "query Big { products(first: 100) { nodes { reviews(first: 100) { nodes { rating } } } } }",
        "query Big($n: Int = 100) { products(first: $n) { nodes { reviews(first: $n) {"
        " nodes { rating } } } } }",
    ],
)
def test_a_document_over_the_cost_maximum_fails_the_import(
    tmp_path: Path, schema: GraphQLSchema, body: str
) -> None:
    path = write(tmp_path / "m.json", {"big-1": body, "small-1": CATALOG})

    with pytest.raises(ManifestError, match=r"Big \(id big-1\): Big costs \d+ with its default"):
        load_manifest(path, schema=schema, max_cost=1000)

    assert len(load_manifest(path, schema=schema)) == 2  # no maximum: no pricing
    cheap = (
        "query Big($n: Int = 1) { products(first: $n) { nodes { reviews(first: $n) {"
        " nodes { rating } } } } }"
    )
    assert load_manifest(write(tmp_path / "c.json", {"c": cheap}), schema=schema, max_cost=1000)
