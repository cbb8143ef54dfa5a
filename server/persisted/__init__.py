"""Persisted queries: which document a request runs, by hash, by id or as text.

Owns Apollo's automatic persisted queries (APQ), trusted documents imported
from client manifests, the store Protocol and its in-process and Redis stores.
"""
