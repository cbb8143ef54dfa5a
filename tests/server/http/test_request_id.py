"""New request ids: 32 hex digits, never repeated, across a pool's refills and a fork."""

from __future__ import annotations

import os
import re

import pytest

from server.http.request_id import request_id_for


def test_a_safe_incoming_id_is_kept_and_an_unsafe_one_replaced() -> None:
    assert request_id_for("edge-7f3a.1") == "edge-7f3a.1"
    replaced = request_id_for("bad id\n")
    assert re.fullmatch(r"[0-9a-f]{32}", replaced)


def test_new_ids_do_not_repeat_across_many_refills() -> None:
    ids = [request_id_for("") for _ in range(5_000)]  # about 20 blocks of randomness
    assert all(re.fullmatch(r"[0-9a-f]{32}", one) for one in ids)
    assert len(set(ids)) == len(ids)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_process_draws_ids_of_its_own() -> None:
    request_id_for("")  # the parent's block is in use
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's exit status carries its result
        os.close(reading)
        os.write(writing, " ".join(request_id_for("") for _ in range(10)).encode())
        os._exit(0)
    os.close(writing)
    with os.fdopen(reading) as pipe:
        childs = set(pipe.read().split())
    os.waitpid(child, 0)
    parents = {request_id_for("") for _ in range(10)}
    assert len(childs) == 10
    assert not childs & parents
