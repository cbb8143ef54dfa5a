"""What graphql-core leaves for the cyclic garbage collector after an operation, released.

graphql-core 3.3 builds reference cycles on every execution, found with
`gc.DEBUG_SAVEALL` (tests/server/test_reference_cycles.py keeps them out):

- its executor holds `async_helpers`, bound methods of itself, so the executor, the
  context, the loaders and every record the operation read waited for the collector;
- an error keeps its traceback, whose frames hold the executor (a field's error) or
  the closures collecting the errors (a variable that does not coerce).

`release_executor` is an `async_work_finished` hook: graphql-core calls it once all
the operation's work has settled, and it drops the helpers. `drop_tracebacks` is
for errors whose traceback nobody reads: request errors, and field errors that are
expected (a DomainError, or graphql-core's own); an unexpected error keeps its
traceback for the log (schema/errors.py), and its cycle.

Example:
    result = await execute(schema, document, hooks=ExecutionHooks(release_executor))
    drop_tracebacks(result.errors or ())
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NoReturn

from graphql import GraphQLError
from graphql.execution import AsyncWorkFinishedInfo
from graphql.type import GraphQLResolveInfoHelpers

from resolvers.errors import DomainError


def _finished(_values: Sequence[Any]) -> NoReturn:
    raise RuntimeError("the operation has finished: its async helpers are released")


FINISHED = GraphQLResolveInfoHelpers(gather=_finished, track=_finished)


def release_executor(info: AsyncWorkFinishedInfo) -> None:
    """Breaks the executor's cycle through its own bound methods."""
    info.executor.async_helpers = FINISHED


def drop_tracebacks(errors: Iterable[GraphQLError], *, expected_only: bool = False) -> None:
    """Drops the tracebacks of `errors` and of every exception they hold (with
    `expected_only`, only of errors a resolver or graphql-core raised on purpose)."""
    for error in errors:
        if not expected_only or _expected(error):
            for held in _held(error):
                held.__traceback__ = None


def _expected(error: GraphQLError) -> bool:
    original = error.original_error
    return original is None or isinstance(original, DomainError)


def _held(error: BaseException) -> Iterator[BaseException]:
    """`error`, its original error, cause and context, and theirs."""
    pending, seen = [error], set()
    while pending:
        held = pending.pop()
        if id(held) not in seen:
            seen.add(id(held))
            yield held
            original = held.original_error if isinstance(held, GraphQLError) else None
            pending.extend(e for e in (original, held.__cause__, held.__context__) if e)
