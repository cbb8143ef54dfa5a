"""GraphQL over HTTP: the `/graphql` view and everything around one HTTP exchange.

Owns request parsing (GET and POST bodies, batches), content negotiation, the
body limit, request ids, client ids, caching headers and conditional requests,
the `Idempotency-Key` header, response compression, GraphiQL and its vendored
(pre-compressed) assets, the error boundary, the probes (`/livez`, `/readyz`,
`/health`), and `/metrics` with the count of `/graphql` requests
(server/http/metrics_endpoint.py). It turns HTTP into a pipeline request and a
pipeline result back into HTTP; it does not execute GraphQL itself.
"""
