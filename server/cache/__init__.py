"""The result caches: whole responses and single entities, their stores and invalidation.

Owns the store Protocol (`protocol`), its in-process and Redis implementations,
the response cache (key, lookup, store with tags), the entity cache behind the
by-id loaders, and the change feed through which committed writes invalidate them.
"""
