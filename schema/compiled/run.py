"""Runs a compiled query plan breadth-first: one pass per level of the response.

Each level first loads every relation it selects for all its objects at once (one
statement per loader, the loaders concurrently), then runs each selected field over
all the objects in a row: leaf fields are attribute reads, relation fields find
their values ready. What a resolver still has to wait for is awaited once per level.
The response is built as plain dicts and lists in field order, ready for orjson. No
Path, no info, no task per field: a position exists only for the objects and lists
in the response (error paths need them), and a graphql-core info only for resolvers
that read more than their context.

Errors: an error in a nullable position nulls it and is reported with
graphql-core's own `located_error`, message, `path` and `locations`. A null in a
non-null position would null an enclosing position, and which errors graphql-core
then reports depends on the timing of its depth-first tasks: such an operation (an
error answer) runs again on graphql-core (`Propagation`), so that answer is
graphql-core's exactly. Without propagation no error can land under a nulled
position, so nothing is dropped and the two executors report the same errors.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Coroutine
from inspect import iscoroutine
from typing import Any

from graphql import ExecutionResult, GraphQLError, GraphQLObjectType, located_error
from graphql.execution.executor import Executor as CoreExecutor
from graphql.pyutils import Path, inspect, is_iterable

from loaders.dataloader import IsolatedDataLoader
from schema.compiled.plan import (
    ABSTRACT,
    ATTRIBUTE,
    LEAF,
    LEAN,
    LIST,
    OBJECT,
    TYPENAME,
    Completion,
    FieldPlan,
    Planner,
    SelectionPlan,
    abstract_runtime_error,
    arguments,
)
from schema.prefetch import levels_batched


class Propagation(BaseException):
    """A null in a non-null position: it would null an enclosing position, and which
    of several such errors graphql-core reports (and which it drops under a nulled
    parent) depends on the timing of its depth-first tasks. Such an operation, an
    error answer, runs again on graphql-core, so its answer is graphql-core's exactly.
    A BaseException: no `except Exception` on the way up may take it for a field error.
    """

    def __init__(self, error: GraphQLError) -> None:
        super().__init__(error.message)
        self.error = error


class Position:
    """Where an object or list sits in the response: its key (a field's response key
    or a list index) under the position enclosing it."""

    __slots__ = ("_path", "key", "parent", "typename")

    def __init__(
        self, parent: Position | None, key: str | int | None, typename: str | None = None
    ) -> None:
        self.parent = parent
        self.key = key
        self.typename = typename  # the parent object's type for a field key, else None
        self._path: Path | None = None

    def as_list(self) -> list[str | int]:
        keys: list[str | int] = []
        position: Position | None = self
        while position is not None and position.key is not None:
            keys.append(position.key)
            position = position.parent
        keys.reverse()
        return keys

    def path(self) -> Path | None:
        """graphql-core's Path of this position (for the resolvers that read info.path)."""
        if self.key is None:
            return None
        if self._path is None:
            assert self.parent is not None
            self._path = Path(self.parent.path(), self.key, self.typename)
        return self._path


_ORPHANED: set[asyncio.Future[Any]] = set()
"""Batches left running by a level that failed while queueing them."""

# (parent position, source value, output dict) of one object at a level.
Item = tuple[Position, Any, dict[str, Any]]


class Run:
    """The state of one execution: the response under construction, its errors."""

    def __init__(self, core: CoreExecutor[Any], planner: Planner, root: SelectionPlan) -> None:
        self.core = core
        self.planner = planner
        self.schema = core.schema
        self.errors: list[GraphQLError] = []
        self.holder: dict[str, Any] = {"data": {}}
        self.root_position = Position(None, None)
        self.next: dict[int, tuple[SelectionPlan, list[Item]]] = {}
        self.waiting: list[Awaitable[Any]] = []
        self.then: list[tuple[FieldPlan, Completion, Any, str | int, Position]] = []
        self.infos: dict[int, Any] = {}
        self.relations: dict[int, Any] = {}  # relation field plan -> its preloaded loader
        self.next[id(root)] = (root, [(self.root_position, core.root_value, self.holder["data"])])

    async def run(self) -> ExecutionResult:
        token = levels_batched.set(True)
        try:
            await self._levels()
        finally:
            levels_batched.reset(token)
        return ExecutionResult(self.holder["data"], self.errors or None)

    async def _levels(self) -> None:
        while self.next:
            level = list(self.next.values())
            self.next = {}
            await self._preload(level)
            for selection, items in level:
                for plan in selection.fields:
                    self._field(plan, items)
            while self.waiting:
                waiting, then = self.waiting, self.then
                self.waiting, self.then = [], []
                await self._settle(waiting, then)

    async def _preload(self, level: list[tuple[SelectionPlan, list[Item]]]) -> None:
        """Loads every relation the level selects, for all its objects at once: each
        loader batches its keys into one statement, the loaders run concurrently, and
        the relation fields then find their values ready (no awaitable per object).
        The batches run from here, not from the loaders' own dispatch: the first in
        this task, the others in a task each, all started before any is awaited."""
        loaders = getattr(self.core.context_value, "loaders", None)
        if loaders is None:
            return
        pending: list[asyncio.Future[Any]] = []
        batches: list[tuple[IsolatedDataLoader[Any, Any], Coroutine[Any, Any, None]]] = []
        try:
            self._queue_level(level, loaders, pending, batches)
        except BaseException:
            for _loader, batch in batches:  # their keys' futures complete all the same
                task = asyncio.ensure_future(batch)
                _ORPHANED.add(task)  # asyncio keeps only a weak reference
                task.add_done_callback(_ORPHANED.discard)
            raise
        if batches:
            # The loader's loop: `ensure_future` would look it up (a getpid syscall).
            others = [loader.loop.create_task(batch) for loader, batch in batches[1:]]
            await batches[0][1]  # a failure reaches its keys' futures, not this task
            for task in others:
                await task
        for future in pending:
            if not future.done():
                with contextlib.suppress(Exception):  # the field reports it
                    await future

    def _queue_level(
        self,
        level: list[tuple[SelectionPlan, list[Item]]],
        loaders: Any,
        pending: list[asyncio.Future[Any]],
        batches: list[tuple[IsolatedDataLoader[Any, Any], Coroutine[Any, Any, None]]],
    ) -> None:
        """Queues the keys of every relation the level selects: the futures still to
        complete go to `pending`, each loader's batch to `batches`, none dispatched."""
        for selection, items in level:
            for plan in selection.fields:
                relation = plan.relation
                if relation is None or not items:
                    continue
                loader = getattr(loaders, relation.loader)
                if relation.child_type is not None:
                    self.relations[id(plan)] = loader  # read straight from it (`_field`)
                attribute = relation.key
                keys = {getattr(source, attribute, None) for _position, source, _out in items}
                keys.discard(None)
                if isinstance(loader, IsolatedDataLoader):
                    waiting, batch = loader.queue(keys)
                    pending += waiting
                    if batch is not None:
                        batches.append((loader, batch))
                    continue
                for key in keys:  # any other loader dispatches itself
                    future = loader.load(key)
                    if not future.done():
                        pending.append(future)

    async def _settle(
        self,
        waiting: list[Awaitable[Any]],
        then: list[tuple[FieldPlan, Completion, Any, str | int, Position]],
    ) -> None:
        """Awaits a level's values and completes them. Coroutines become tasks, all
        started before anything is awaited, except a first one: awaited first, it
        runs in this task (the root field's resolver, a nested page's) while the
        others start. The loader futures of a level complete together, batch by
        batch, so awaiting them in turn suspends once per batch and costs no callback
        per future, as `gather` would."""
        started: list[Awaitable[Any]] = [
            asyncio.ensure_future(w) if index and iscoroutine(w) else w
            for index, w in enumerate(waiting)
        ]
        try:
            for future, (plan, completion, container, key, parent) in zip(
                started, then, strict=True
            ):
                try:
                    value = await future
                except Exception as error:
                    value = error
                self._complete(plan, completion, value, container, key, parent)
        except BaseException:
            # Cancelled (the execution timed out) or abandoned for graphql-core: so
            # are the resolvers still running.
            for future in started:
                if not isinstance(future, asyncio.Task):
                    continue
                if not future.done():
                    future.cancel()
                elif not future.cancelled():
                    future.exception()  # retrieved: nothing to log
            raise

    # -- fields -------------------------------------------------------------------

    def _field(self, plan: FieldPlan, items: list[Item]) -> None:
        key = plan.key
        kind = plan.kind
        completion = plan.completion
        if kind is TYPENAME:
            name = plan.parent_type.name
            for _position, _source, out in items:
                out[key] = name
            return
        if kind is ATTRIBUTE:
            attribute = plan.attribute
            assert attribute is not None
            if completion.kind is LEAF:
                self._leaves(plan, items, attribute)
                return
            for position, source, out in items:
                try:
                    value = getattr(source, attribute)
                except Exception as error:
                    out[key] = None
                    self._error(error, plan, completion, out, key, position)
                    continue
                self._complete(plan, completion, value, out, key, position)
            return
        try:
            args = arguments(plan, self.planner.variable_values, self.planner.hide_suggestions)
        except GraphQLError as error:
            for position, _source, out in items:
                out[key] = None
                self._error(error, plan, completion, out, key, position)
            return
        resolve = plan.resolve or self.core.field_resolver
        if kind is LEAN:
            loader = self.relations.get(id(plan))
            if loader is not None:
                self._relation(plan, items, loader)
                return
            info = self._info(plan, items[0][0]) if items else None
            for position, source, out in items:
                try:
                    value = resolve(source, info, **args)
                except Exception as error:
                    out[key] = None
                    self._error(error, plan, completion, out, key, position)
                    continue
                self._complete(plan, completion, value, out, key, position)
            return
        for position, source, out in items:
            try:
                value = resolve(source, self._info(plan, position), **args)
            except Exception as error:
                out[key] = None
                self._error(error, plan, completion, out, key, position)
                continue
            self._complete(plan, completion, value, out, key, position)

    def _relation(self, plan: FieldPlan, items: list[Item], loader: Any) -> None:
        """A relation field over a level, its values preloaded: what its lean resolver
        returns (`loaded(loader, key)`, schema/prefetch.py's RELATIONS), read straight
        from the loader. A missing key goes through the resolver itself."""
        assert plan.relation is not None
        assert plan.resolve is not None
        attribute = plan.relation.key
        key = plan.key
        completion = plan.completion
        resolve = plan.resolve
        info = None
        if (
            completion.kind is OBJECT
            and completion.selection is not None
            and completion.selection.type is completion.type
        ):
            self._related_objects(plan, items, loader)
            return
        for position, source, out in items:
            try:
                related = getattr(source, attribute)
                if related is None:
                    if info is None:
                        info = self._info(plan, position)
                    value = resolve(source, info)
                else:
                    future = loader.load(related)
                    value = future.result() if future.done() else future
            except Exception as error:
                out[key] = None
                self._error(error, plan, completion, out, key, position)
                continue
            self._complete(plan, completion, value, out, key, position)

    def _related_objects(self, plan: FieldPlan, items: list[Item], loader: Any) -> None:
        """`_relation` for a field whose values are objects of one type (an order's
        customer, an item's product): what `_complete` and `_object` do with a loaded
        object, in line, without their calls per object (the dashboard relates about
        500 per request). Anything else (a missing key, a value not loaded, null, an
        error, a value of another type) takes `_relation`'s way."""
        assert plan.relation is not None
        assert plan.resolve is not None
        completion = plan.completion
        selection = completion.selection
        assert selection is not None
        attribute = plan.relation.key
        key = plan.key
        resolve = plan.resolve
        is_type_of = completion.type.is_type_of
        typename = plan.parent_type.name  # `_typename` of a field key
        # The loader's own cache, read as its `load` reads it when keys are their own
        # cache keys: a hit costs no call.
        cache = (
            loader._cache
            if isinstance(loader, IsolatedDataLoader)
            and loader.cache
            and not loader._custom_cache_key
            else None
        )
        children = self._items(selection)
        info = None
        for position, source, out in items:
            try:
                related = getattr(source, attribute)
                if related is None:
                    value = resolve(source, self._info(plan, position))
                else:
                    future = None if cache is None else cache.get(related)
                    if future is None:
                        future = loader.load(related)
                    if not future.done():
                        self._complete(plan, completion, future, out, key, position)
                        continue
                    value = future.result()
                if value is None or isinstance(value, Exception) or hasattr(value, "__await__"):
                    self._complete(plan, completion, value, out, key, position)
                    continue
                if is_type_of is not None:
                    if info is None:
                        info = self._field_info(plan, position, key)
                    if not is_type_of(value, info):
                        self._complete(plan, completion, value, out, key, position)
                        continue
            except Exception as error:
                out[key] = None
                self._error(error, plan, completion, out, key, position)
                continue
            child: dict[str, Any] = {}
            out[key] = child
            children.append((Position(position, key, typename), value, child))

    def _leaves(self, plan: FieldPlan, items: list[Item], attribute: str) -> None:
        """A plain leaf field over a level: read, coerce, store."""
        key = plan.key
        completion = plan.completion
        coerce = completion.coerce
        assert coerce is not None
        nullable = completion.nullable
        for position, source, out in items:
            try:
                value = getattr(source, attribute)
                if value is None:
                    out[key] = None
                    if not nullable:
                        self._null(plan, completion, out, key, position)
                    continue
                if hasattr(value, "__await__"):
                    out[key] = None
                    self._wait(value, plan, completion, out, key, position)
                    continue
                coerced = coerce(value)
                if coerced is None:
                    raise TypeError(_not_coerced(completion, value, coerced))
                out[key] = coerced
            except Exception as error:
                out[key] = None
                self._error(error, plan, completion, out, key, position)

    def _info(self, plan: FieldPlan, position: Position) -> Any:
        """The info graphql-core gives `plan`'s resolver on the object at `position`."""
        path = Path(position.path(), plan.key, plan.parent_type.name)
        return self.core.build_resolve_info(plan.definition, plan.nodes, plan.parent_type, path)

    def _field_info(self, plan: FieldPlan, parent: Position, key: str | int | None = None) -> Any:
        """The field's info for `is_type_of` and `resolve_type` while completing its
        values: built once per field plan and run (its path is that of the first
        value completed; resolvers that read `info.path` get their own, exact info)."""
        found = self.infos.get(id(plan))
        if found is None:
            found = self.infos[id(plan)] = self._exact_field_info(plan, parent, key)
        return found

    def _exact_field_info(self, plan: FieldPlan, parent: Position, key: str | int | None) -> Any:
        if isinstance(key, str):
            return self._info(plan, parent)
        position: Position | None = parent
        while position is not None and not isinstance(position.key, str):
            position = position.parent
        assert position is not None
        assert position.parent is not None
        return self._info(plan, position.parent)

    # -- completion ---------------------------------------------------------------

    def _wait(
        self,
        value: Awaitable[Any],
        plan: FieldPlan,
        completion: Completion,
        container: Any,
        key: str | int,
        parent: Position,
    ) -> None:
        self.waiting.append(value)
        self.then.append((plan, completion, container, key, parent))

    def _complete(
        self,
        plan: FieldPlan,
        completion: Completion,
        value: Any,
        container: Any,
        key: str | int,
        parent: Position,
    ) -> None:
        """Completes `value` into `container[key]` (already holding a placeholder)."""
        try:
            if isinstance(value, Exception):
                raise value
            if value is None:
                container[key] = None
                if not completion.nullable:
                    self._null(plan, completion, container, key, parent)
                return
            if hasattr(value, "__await__"):
                container[key] = None
                self._wait(value, plan, completion, container, key, parent)
                return
            kind = completion.kind
            if kind is LEAF:
                coerce = completion.coerce
                assert coerce is not None
                coerced = coerce(value)
                if coerced is None:
                    raise TypeError(_not_coerced(completion, value, coerced))
                container[key] = coerced
            elif kind is OBJECT:
                self._object(plan, completion, completion.type, value, container, key, parent)
            elif kind is LIST:
                self._list(plan, completion, value, container, key, parent)
            else:
                assert kind is ABSTRACT
                self._abstract(plan, completion, value, container, key, parent)
        except Exception as error:
            container[key] = None
            self._error(error, plan, completion, container, key, parent)

    def _list(
        self,
        plan: FieldPlan,
        completion: Completion,
        value: Any,
        container: Any,
        key: str | int,
        parent: Position,
    ) -> None:
        if not is_iterable(value):
            raise GraphQLError(
                "Expected Iterable, but did not find one for field"
                f" '{plan.parent_type}.{plan.name}'."
            )
        inner = completion.inner
        assert inner is not None
        out: list[Any] = []
        container[key] = out
        position = Position(parent, key, _typename(plan, key))
        if inner.kind is OBJECT and inner.selection is not None:
            # The common case (a list of objects of one type), without a call per item.
            selection = inner.selection
            is_type_of = inner.type.is_type_of
            items = self._items(selection)
            info = self._field_info(plan, position) if is_type_of is not None else None
            for index, item in enumerate(value):
                if item is None or hasattr(item, "__await__") or isinstance(item, Exception):
                    out.append(None)
                    self._complete(plan, inner, item, out, index, position)
                    continue
                if is_type_of is not None and not is_type_of(item, info):
                    out.append(None)
                    self._complete(plan, inner, item, out, index, position)
                    continue
                child: dict[str, Any] = {}
                out.append(child)
                items.append((Position(position, index), item, child))
            return
        for index, item in enumerate(value):
            out.append(None)
            self._complete(plan, inner, item, out, index, position)

    def _object(
        self,
        plan: FieldPlan,
        completion: Completion,
        type_: GraphQLObjectType,
        value: Any,
        container: Any,
        key: str | int,
        parent: Position,
    ) -> None:
        is_type_of = type_.is_type_of
        if is_type_of is not None and not is_type_of(value, self._field_info(plan, parent, key)):
            raise GraphQLError(
                f"Expected value of type '{type_}' but got: {inspect(value)}.", plan.nodes
            )
        selection = completion.selection
        if selection is None or selection.type is not type_:
            selection = self._selection_for(plan, completion, type_)
        out: dict[str, Any] = {}
        container[key] = out
        position = Position(parent, key, _typename(plan, key))
        self._items(selection).append((position, value, out))

    def _abstract(
        self,
        plan: FieldPlan,
        completion: Completion,
        value: Any,
        container: Any,
        key: str | int,
        parent: Position,
    ) -> None:
        abstract = completion.type
        resolve_type = abstract.resolve_type or self.core.type_resolver
        runtime = resolve_type(value, self._field_info(plan, parent, key), abstract)
        if hasattr(runtime, "__await__"):
            raise GraphQLError("Asynchronous type resolution is not compiled.", plan.nodes)
        checked = abstract_runtime_error(abstract, plan, runtime, value, self.schema)
        if isinstance(checked, GraphQLError):
            raise checked
        self._object(plan, completion, checked, value, container, key, parent)

    def _selection_for(
        self, plan: FieldPlan, completion: Completion, type_: GraphQLObjectType
    ) -> SelectionPlan:
        if completion.kind is OBJECT:
            if completion.selection is None:
                completion.selection = self.planner.subselection(type_, plan)
            return completion.selection
        found = completion.selections.get(type_.name)
        if found is None:
            found = completion.selections[type_.name] = self.planner.subselection(type_, plan)
        return found

    def _items(self, selection: SelectionPlan) -> list[Item]:
        entry = self.next.get(id(selection))
        if entry is None:
            entry = self.next[id(selection)] = (selection, [])
        return entry[1]

    # -- nulls and errors ---------------------------------------------------------

    def _null(
        self,
        plan: FieldPlan,
        completion: Completion,
        container: Any,
        key: str | int,
        parent: Position,
    ) -> None:
        error = TypeError(
            f"Cannot return null for non-nullable field {plan.parent_type}.{plan.name}."
        )
        self._error(error, plan, completion, container, key, parent)

    def _error(
        self,
        raw: Exception,
        plan: FieldPlan,
        completion: Completion,
        container: Any,
        key: str | int,
        parent: Position,
    ) -> None:
        """Reports `raw` at `container[key]`, a nullable position: it becomes null
        (graphql-core's `handle_field_error`). A non-null position would null an
        enclosing one: the run gives the operation to graphql-core (`Propagation`)."""
        path = parent.as_list()
        path.append(key)
        error = located_error(raw, plan.nodes, path)
        if not completion.nullable:
            raise Propagation(error)
        container[key] = None
        self.errors.append(error)


def _typename(plan: FieldPlan, key: str | int) -> str | None:
    return plan.parent_type.name if isinstance(key, str) else None


def _not_coerced(completion: Completion, value: Any, coerced: Any) -> str:
    return (
        f"Expected `{inspect(completion.type)}.coerce_output_value("
        f"{inspect(value)})` to return non-nullable value, returned:"
        f" {inspect(coerced)}"
    )
