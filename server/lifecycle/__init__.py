"""The process's life: whether it is ready to serve, and how it stops.

Owns the readiness checks behind `/readyz` and `/health` (database, migrations
at head, Redis; one log line per change) and the graceful shutdown on SIGTERM
(readiness drops at once, new connections are served for a grace, requests in
flight finish). server/http/probes.py answers the probes from these. And the
garbage collector's tuning once the process has started (gc_tuning.py).
"""
