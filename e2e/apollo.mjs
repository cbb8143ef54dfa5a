// Apollo Client with its persisted-queries link against a running Storefront.
//
//   node e2e/apollo.mjs http://127.0.0.1:8000/graphql
//
// Checks the APQ exchange request by request, as Apollo's link performs it:
// the first request carries only the hash, the server answers
// PERSISTED_QUERY_NOT_FOUND, the link retries with the document, and later
// requests carry only the hash again; then the same over GET with
// `useGETForHashedQueries`. Prints one JSON line; exits non-zero on a failure.
import { createHash, randomUUID } from "node:crypto";
import assert from "node:assert/strict";

import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";

const endpoint = process.argv[2];
if (!endpoint) {
  console.error("usage: node e2e/apollo.mjs http://HOST:PORT/graphql");
  process.exit(2);
}

const sha256 = (text) => createHash("sha256").update(text).digest("hex");

/** A fetch that records every exchange: method, what was sent, and what came back. */
function recordingFetch(log) {
  return async (url, init) => {
    const target = new URL(url);
    const sent =
      init.method === "GET"
        ? {
            query: target.searchParams.get("query"),
            extensions: JSON.parse(target.searchParams.get("extensions") ?? "null"),
          }
        : JSON.parse(init.body);
    const response = await fetch(url, init);
    const text = await response.clone().text();
    log.push({
      method: init.method,
      sent,
      status: response.status,
      cacheControl: response.headers.get("cache-control"),
      body: JSON.parse(text),
    });
    return response;
  };
}

function client(log, options) {
  const link = ApolloLink.from([
    new PersistedQueryLink({ sha256, ...options }),
    new HttpLink({ uri: endpoint, fetch: recordingFetch(log) }),
  ]);
  return new ApolloClient({ link, cache: new InMemoryCache() });
}

// A fresh document each run (an alias with a nonce), so its hash is unknown to the server.
function catalogQuery() {
  const nonce = randomUUID().replaceAll("-", "");
  return gql`
    query Catalog($n: Int!) {
      run_${nonce}: __typename
      products(first: $n) { totalCount nodes { name priceCents } }
    }
  `;
}

const codes = (entry) => (entry.body.errors ?? []).map((e) => e.extensions?.code);

function checkHashOnly(entry, method) {
  assert.equal(entry.method, method);
  assert.equal(entry.sent.query ?? null, null, "a hashed request must not carry the document");
  assert.equal(entry.sent.extensions.persistedQuery.version, 1);
  assert.match(entry.sent.extensions.persistedQuery.sha256Hash, /^[0-9a-f]{64}$/);
}

async function exchange(options) {
  const log = [];
  const apollo = client(log, options);
  const query = catalogQuery();
  const method = options.useGETForHashedQueries ? "GET" : "POST";

  const first = await apollo.query({ query, variables: { n: 2 }, fetchPolicy: "network-only" });
  assert.equal(log.length, 2, "first run: hash, then the retry with the document");
  checkHashOnly(log[0], method);
  assert.equal(log[0].status, 200);
  assert.deepEqual(codes(log[0]), ["PERSISTED_QUERY_NOT_FOUND"]);
  assert.equal(log[0].body.errors[0].message, "PersistedQueryNotFound");
  assert.equal(log[0].cacheControl, "private, no-cache, must-revalidate");
  assert.equal(log[1].method, "POST");
  assert.equal(sha256(log[1].sent.query), log[1].sent.extensions.persistedQuery.sha256Hash);
  assert.equal(log[1].status, 200);
  assert.equal(log[1].body.errors, undefined);
  assert.ok(first.data.products.totalCount >= 0);

  for (let i = 0; i < 2; i += 1) {
    const again = await apollo.query({ query, variables: { n: 2 }, fetchPolicy: "network-only" });
    assert.deepEqual(again.data, first.data);
  }
  assert.equal(log.length, 4, "later runs: one hashed request each, no retry");
  for (const entry of log.slice(2)) {
    checkHashOnly(entry, method);
    assert.equal(entry.status, 200);
    assert.equal(entry.body.errors, undefined);
  }
  return log.map((e) => `${e.method} ${e.sent.query ? "document" : "hash"} -> ${e.status} ${codes(e).join(",") || "data"}`);
}

const post = await exchange({});
const get = await exchange({ useGETForHashedQueries: true });
console.log(JSON.stringify({ ok: true, post, get }));
