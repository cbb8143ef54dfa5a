"""A related object the compiled executor reads straight from its loader: when the
loader's value is not a plain object of the field's type (missing, an error, another
type), the answer is still graphql-core's. The seed has none of these, so a loader
here is made to return them, key by key, on both executors alike."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from schema.compiled.compare import describe, same
from schema.context import Context
from tests.schema.differential_support import Executors

QUERY = "{ categories { name children { name parent { id name } } } }"


class _Elsewhere:
    """A value of no GraphQL type the field could take."""


def _oddly(key: int, value: Any) -> Any:
    """The loader's value for `key`, or one of the odd ones, by the key alone (so both
    executors see the same whatever their batches)."""
    odd = key % 4
    if odd == 0:
        return None
    if odd == 1:
        return LookupError(f"category {key} could not be read")
    if odd == 2:
        return _Elsewhere()
    return value


def _with_odd_parents(context: Context) -> Context:
    loader = context.loaders.category_by_id
    load_batch: Callable[[list[int]], Awaitable[list[Any]]] = loader.batch_load_fn

    async def batch(keys: list[int]) -> list[Any]:
        values = await load_batch(keys)
        return [_oddly(key, value) for key, value in zip(keys, values, strict=True)]

    loader.batch_load_fn = batch
    return context


async def test_odd_related_values_answer_as_graphql_core(executors: Executors) -> None:
    compiled = executors.compiled
    document = compiled.parse(QUERY)
    answer = await compiled.execute_compiled(
        document, None, None, _with_odd_parents(executors.context("anonymous"))
    )
    assert answer is not None  # `parent` is nullable: nothing is handed to graphql-core
    reference = await executors.reference.execute(
        executors.reference.parse(QUERY),
        operation_name=None,
        variables=None,
        context=_with_odd_parents(executors.context("anonymous")),
    )
    assert same(answer, reference), f"{describe(answer)}\n{describe(reference)}"
    # Every kind of odd value was met, and some plain ones too.
    messages = {error.message.split(" ")[0] for error in answer.errors or ()}
    assert messages == {"category", "Expected"}
    parents = [c["parent"] for r in answer.data["categories"] for c in r["children"]]
    assert None in parents
    assert any(parent is not None for parent in parents)
