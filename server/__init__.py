"""The process edge: everything that knows HTTP, Redis, the environment and the CLI.

Top level: the app factory (`app`), the settings (`settings`, `setting_fields`),
the engine (`database`), the composition root (`services`) and the
transport-neutral request pipeline (`pipeline`). Each wing is a subpackage that
owns one concern: `http` (GraphQL over HTTP), `auth` (who is asking), `cache`
(response and entity caches), `persisted` (APQ and trusted documents),
`ratelimit` (cost buckets and throttles), `observability` (logs, later metrics
and traces) and `cli` (the `storefront` command). Nothing outside `server`
imports it except tests, benchmarks and alembic's env.py.
"""
