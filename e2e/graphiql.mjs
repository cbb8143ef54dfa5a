// Headless Chromium drives Storefront's GraphiQL page with no network but the server.
//
//   node e2e/graphiql.mjs http://127.0.0.1:8000 TOKEN [screenshot.png]
//
// Loads /graphql as a browser would, refuses every request that leaves the
// server's origin (so a CDN asset would fail the test), types a token into the
// Headers editor, runs a query with the Run button and waits for its result in
// the response pane. Prints one JSON line; exits non-zero on a failure.
// The browser is Debian's `chromium` (CHROMIUM overrides the path).
import puppeteer from "puppeteer-core";

const [base, token, screenshot] = process.argv.slice(2);
if (!base || !token) {
  console.error("usage: node e2e/graphiql.mjs http://HOST:PORT TOKEN [screenshot.png]");
  process.exit(2);
}
const origin = new URL(base).origin;
const QUERY = "{ viewer { email } products(first: 2) { totalCount } }";

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
  timeout: 60_000,
});
const offsite = [];
const consoleErrors = [];
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  await page.setRequestInterception(true);
  page.on("request", (request) => {
    const url = request.url();
    if (url.startsWith("data:") || new URL(url).origin === origin) {
      request.continue();
    } else {
      offsite.push(url);
      request.abort();
    }
  });
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => consoleErrors.push(String(error)));

  const response = await page.goto(`${base}/graphql`, { waitUntil: "networkidle0", timeout: 30_000 });
  if (response.status() !== 200) throw new Error(`GET /graphql answered ${response.status()}`);
  await page.waitForSelector(".graphiql-query-editor .CodeMirror", { timeout: 30_000 });

  // GraphiQL 3's editors are CodeMirror 5 instances; the visible tool editor is Headers.
  await page.evaluate(
    (query, headers) => {
      document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror.setValue(query);
      const tools = [...document.querySelectorAll(".graphiql-editor-tool .graphiql-editor")];
      const visible = tools.find((editor) => !editor.classList.contains("hidden"));
      visible.querySelector(".CodeMirror").CodeMirror.setValue(headers);
    },
    QUERY,
    JSON.stringify({ Authorization: `Bearer ${token}` }),
  );
  await page.click(".graphiql-execute-button");
  await page.waitForFunction(
    () => {
      const pane = document.querySelector(".graphiql-response .CodeMirror");
      return pane && pane.CodeMirror.getValue().includes("totalCount");
    },
    { timeout: 30_000 },
  );
  const result = await page.evaluate(() =>
    document.querySelector(".graphiql-response .CodeMirror").CodeMirror.getValue(),
  );
  if (screenshot) await page.screenshot({ path: screenshot });
  console.log(JSON.stringify({ ok: offsite.length === 0, result: JSON.parse(result), offsite, consoleErrors }));
  process.exitCode = offsite.length === 0 ? 0 : 1;
} finally {
  await browser.close();
}
