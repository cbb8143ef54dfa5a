"""Rate limiting: leaky buckets of query cost per client, and the throttles that use them.

Owns the bucket Protocol with its in-process and Redis (Lua) implementations, the
leases that charge most requests without a Redis call,
charging an operation's cost (reserve before, settle after), and the throttle
on failed authentications.
"""
