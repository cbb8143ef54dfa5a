"""What a request costs before execution when its document is known: the hit path.

For each document below, times what the pipeline does before it executes, with
every cache warm: parse (a cache hit), validate (cached outcome), find the
operation, coerce the variables, price it (cached plan) and take its cache policy
(cached plan). No database, no HTTP: only the document analysis, in this process.
Uses only the public methods, so the same script measures any commit:

    .venv/bin/python -m bench.document_analysis [--rounds 7] [--per-round 20000]
    # another tree, same venv:  cd /tmp/base && /path/.venv/bin/python -m bench.document_analysis

Prints, per document, the median and the best over rounds of the mean CPU µs per
request (this process's CPU time: less sensitive than wall time to a busy machine).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from bench.common import DASHBOARD
from schema import Executor, create_schema
from schema.cache_policy import CachePolicies
from schema.cost import CostAnalysis

DOCUMENTS: dict[str, tuple[str, str | None, dict[str, Any]]] = {
    "dashboard": (DASHBOARD, None, {"n": 50}),
    "fragments, 2 ops": (
        """
        query Shelf { categories { ...Named children { ...Named } } }
        query Page($n: Int) {
          products(first: $n) { totalCount nodes { ...Priced category { ...Named } } }
        }
        fragment Named on Category { id name }
        fragment Priced on Product { id name priceCents averageRating }
        """,
        "Page",
        {"n": 20},
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--per-round", type=int, default=20_000)
    args = parser.parse_args()

    schema = create_schema()._schema
    executor = Executor(schema)
    costs = CostAnalysis(schema, max_cost=10**9)
    policies = CachePolicies(schema)

    def request(text: str, name: str | None, variables: dict[str, Any]) -> None:
        document = executor.parse(text)
        executor.validate(document)
        operation = document.operation(name)
        coerced = executor.check_variables(operation, variables)
        costs.price(document, operation, coerced)
        policies.policy(document, operation, coerced)

    for label, (text, name, variables) in DOCUMENTS.items():
        request(text, name, variables)  # the miss: parse, validate, compile
        rounds = []
        for _ in range(args.rounds):
            started = time.process_time()
            for _ in range(args.per_round):
                request(text, name, variables)
            rounds.append((time.process_time() - started) / args.per_round * 1e6)
        print(
            f"{label:<18} median {statistics.median(rounds):6.2f}  best {min(rounds):6.2f} "
            f"CPU µs/request (rounds: {' '.join(f'{r:.2f}' for r in rounds)})"
        )


if __name__ == "__main__":
    main()
