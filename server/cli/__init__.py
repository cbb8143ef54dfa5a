"""The `storefront` command: serve, migrate, seed, schema, tokens, users, caches, persisted queries.

`main` is the console script. `storefront --help` imports only click and this
package's `main`: each command imports what it needs when it runs.
"""
