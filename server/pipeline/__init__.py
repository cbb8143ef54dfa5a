"""The transport-neutral request pipeline: parse → validate → price → throttle → cache →
execute → serialize.

Owns what one operation goes through whatever carried it (`run`, `run_batch`),
the request and result it speaks in (`request`), the one way an operation is
executed (`execution`), the answer's payload (`answers`) and keyed writes
(`idempotency`). It imports no transport: server/http/ turns HTTP into an
`OperationRequest` and a `Result` back into HTTP.
"""
