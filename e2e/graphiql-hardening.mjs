// Headless Chromium checks GraphiQL's hardening against a running Storefront server.
//
//   node e2e/graphiql-hardening.mjs http://127.0.0.1:8000 TOKEN
//
// framing: a page of another origin (served here, on a port of its own) frames
//   GraphiQL and, as a control, a JSON answer of the same server; the control
//   must render, GraphiQL must not.
// headers: a token typed into the Headers editor is gone after a reload and is
//   in no localStorage value, unless "Persist headers" was turned on in the
//   settings dialog; a browser that persisted headers before they were opt-in
//   has them dropped on its first visit.
// Prints one JSON line; exits non-zero on an error (the test asserts on the report).
// The browser is Debian's `chromium` (CHROMIUM overrides the path).
import http from "node:http";
import puppeteer from "puppeteer-core";

const [base, token] = process.argv.slice(2);
if (!base || !token) {
  console.error("usage: node e2e/graphiql-hardening.mjs http://HOST:PORT TOKEN");
  process.exit(2);
}
const HEADERS = JSON.stringify({ Authorization: `Bearer ${token}` });
const QUERY = "{ viewer { email } }";

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
  timeout: 60_000,
});
try {
  const report = { framing: await framing(), headers: await headers() };
  console.log(JSON.stringify(report));
} finally {
  await browser.close();
}

async function framing() {
  const control = `${base}/graphql?query=${encodeURIComponent("{ __typename }")}`;
  const framer = http.createServer((request, response) => {
    response.writeHead(200, { "Content-Type": "text/html" });
    response.end(
      `<!doctype html><title>framer</title>` +
        `<iframe name="graphiql" src="${base}/graphql" width="800" height="600"></iframe>` +
        `<iframe name="control" src="${control}" width="400" height="200"></iframe>`,
    );
  });
  await new Promise((resolve) => framer.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${framer.address().port}`;
  const context = await browser.createBrowserContext();
  const messages = [];
  try {
    const page = await context.newPage();
    page.on("console", (message) => messages.push(message.text()));
    await page.goto(origin, { waitUntil: "networkidle0", timeout: 30_000 });
    // Time for GraphiQL to render, were it allowed to.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const frames = Object.fromEntries(page.frames().map((frame) => [frame.name(), frame]));
    return {
      framerOrigin: origin,
      graphiqlRendered: await rendered(frames.graphiql, ".graphiql-container"),
      controlText: await text(frames.control),
      refusals: messages.filter((m) => m.includes("frame-ancestors")),
    };
  } finally {
    await context.close();
    framer.close();
  }
}

async function rendered(frame, selector) {
  if (!frame) return false;
  try {
    return await frame.evaluate((s) => document.querySelector(s) !== null, selector);
  } catch {
    return false; // an error page Chromium put in its place
  }
}

async function text(frame) {
  if (!frame) return null;
  try {
    return await frame.evaluate(() => document.body?.innerText ?? null);
  } catch {
    return null;
  }
}

async function headers() {
  const context = await browser.createBrowserContext();
  try {
    const page = await context.newPage();
    const result = {};
    await open(page);
    await typeHeadersAndRun(page);
    result.byDefault = await afterReload(page);

    await setPersistHeaders(page, true);
    await typeHeadersAndRun(page);
    result.optedIn = await afterReload(page);
    result.optedInSecondReload = await afterReload(page);

    await setPersistHeaders(page, false);
    result.optedOut = await afterReload(page);

    // A browser from before headers were opt-in: GraphiQL's flag "true", the token saved.
    const legacy = await browser.createBrowserContext();
    try {
      const old = await legacy.newPage();
      await old.goto(`${base}/health`);
      await old.evaluate((headers) => {
        localStorage.setItem("graphiql:shouldPersistHeaders", "true");
        localStorage.setItem("graphiql:headers", headers);
      }, HEADERS);
      await open(old);
      result.legacy = await state(old);
      result.legacyAfterReload = await afterReload(old);
    } finally {
      await legacy.close();
    }
    return result;
  } finally {
    await context.close();
  }
}

async function open(page) {
  await page.goto(`${base}/graphql`, { waitUntil: "networkidle0", timeout: 30_000 });
  await page.waitForSelector(".graphiql-query-editor .CodeMirror", { timeout: 30_000 });
}

// GraphiQL 3's editors are CodeMirror 5 instances; the visible tool editor is Headers.
async function typeHeadersAndRun(page) {
  await page.evaluate(
    (query, headers) => {
      document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror.setValue(query);
      const tools = [...document.querySelectorAll(".graphiql-editor-tool .graphiql-editor")];
      const visible = tools.find((editor) => !editor.classList.contains("hidden"));
      visible.querySelector(".CodeMirror").CodeMirror.setValue(headers);
    },
    QUERY,
    HEADERS,
  );
  await page.click(".graphiql-execute-button");
  await page.waitForFunction(
    () => {
      const pane = document.querySelector(".graphiql-response .CodeMirror");
      return pane && pane.CodeMirror.getValue().includes("email");
    },
    { timeout: 30_000 },
  );
  // GraphiQL writes its tab state to storage 500 ms after a change.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
}

async function setPersistHeaders(page, on) {
  await page.click('[aria-label="Open settings dialog"]');
  await page.waitForSelector(on ? "#enable-persist-headers" : "#disable-persist-headers");
  await page.click(on ? "#enable-persist-headers" : "#disable-persist-headers");
  await page.keyboard.press("Escape");
  await new Promise((resolve) => setTimeout(resolve, 300));
}

async function afterReload(page) {
  await page.reload({ waitUntil: "networkidle0", timeout: 30_000 });
  await page.waitForSelector(".graphiql-query-editor .CodeMirror", { timeout: 30_000 });
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  return state(page);
}

// What the page shows in its Headers editor and what localStorage holds.
async function state(page) {
  return page.evaluate(() => {
    const editors = [...document.querySelectorAll(".graphiql-editor-tool .graphiql-editor")];
    const storage = {};
    for (let i = 0; i < localStorage.length; i++) {
      const key = localStorage.key(i);
      storage[key] = localStorage.getItem(key);
    }
    return {
      editors: editors.map((editor) => editor.querySelector(".CodeMirror").CodeMirror.getValue()),
      storage,
    };
  });
}
