"""Read replicas: which database a query's loader reads go to.

Owns the replica URLs setting's reader (`urls`), the read-after token that
carries a client's last write position in a header or cookie (`read_after`),
and the replica set (`replica_set`): each replica's health, replay position and
lag, checked in the background; the choice of a replica (or the primary) for a
read; the fallback to the primary when a replica fails; and the second
invalidation of a write's cached answers once the replicas have replayed it.
"""
