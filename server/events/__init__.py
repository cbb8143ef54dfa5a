"""Events leaving the process: the outbox relay, `storefront worker`, and webhooks
(webhooks/: secrets, signing, the SSRF-guarded delivery job on the saq queue)."""
