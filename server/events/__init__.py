"""Events, process side: the relay that publishes the outbox (resolvers/events.py) to
Redis, the subscription through which every instance applies them to its caches, the
relay loop of `storefront worker` (or of the server itself without Redis), and the
consumers the relay calls per batch (webhooks/: secrets, signing, the fan-out, the
SSRF-guarded delivery jobs on saq)."""
