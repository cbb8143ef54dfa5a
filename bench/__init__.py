"""Benchmarks and checks run by hand against a seeded database; each script's docstring
gives its command.

- `prepare`: create, migrate, seed and ANALYZE the benchmark database.
- `explain`: every statement the API issues uses an index (EXPLAIN on PostgreSQL).
- `dashboard`: the order-dashboard benchmark (statements, latency, CPU, RSS).
- `profile`: where the server's CPU goes on dashboard requests (cProfile).
"""
