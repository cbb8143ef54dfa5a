// The graphql-http conformance audit (GraphQL over HTTP spec) against a running server.
//
//   node e2e/audit.mjs http://127.0.0.1:8000/graphql
//
// Prints one JSON object: the count of passing audits, and the name and reason of
// every failing one, split into `errors` (MUST) and `warnings` (SHOULD / MAY).
// Exits 1 when a MUST fails.
import { auditServer } from "graphql-http";

const url = process.argv[2];
if (!url) {
  console.error("usage: node e2e/audit.mjs http://HOST:PORT/graphql");
  process.exit(2);
}

const results = await auditServer({ url });
const failing = (status) =>
  results.filter((r) => r.status === status).map((r) => ({ id: r.id, name: r.name, reason: r.reason }));
const report = {
  total: results.length,
  ok: results.filter((r) => r.status === "ok").length,
  errors: failing("error"),
  warnings: failing("warn"),
};
console.log(JSON.stringify(report));
process.exit(report.errors.length ? 1 : 0);
