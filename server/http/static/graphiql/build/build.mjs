// Rebuilds the vendored GraphiQL assets in server/http/static/graphiql/ from the npm packages pinned
// in package-lock.json: graphiql's UMD bundle (minified here: upstream ships it unminified),
// the React 18 UMD production builds, and THIRD_PARTY_LICENSES.txt.
//
//   node server/http/static/graphiql/build/build.mjs [scratch-dir]   # default /tmp/graphiql-build
//
// node_modules lives in the scratch directory, never in the repository.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const buildDir = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.dirname(buildDir);
const scratch = path.resolve(process.argv[2] ?? "/tmp/graphiql-build");

fs.mkdirSync(scratch, { recursive: true });
for (const name of ["package.json", "package-lock.json"]) {
  fs.copyFileSync(path.join(buildDir, name), path.join(scratch, name));
}
execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: scratch, stdio: "inherit" });

const nodeModules = path.join(scratch, "node_modules");
const esbuild = createRequire(path.join(scratch, "package.json"))("esbuild");
const read = (...parts) => fs.readFileSync(path.join(nodeModules, ...parts), "utf8");
const write = (name, text) => fs.writeFileSync(path.join(outDir, name), text);

const graphiqlJs = read("graphiql", "graphiql.min.js");
const graphiqlCss = read("graphiql", "graphiql.min.css");
const minify = (code, loader) =>
  esbuild.transformSync(code, { loader, minify: true, legalComments: "eof" }).code;

write("graphiql.min.js", minify(graphiqlJs, "js"));
write("graphiql.min.css", minify(graphiqlCss, "css"));
write("react.production.min.js", read("react", "umd", "react.production.min.js"));
write("react-dom.production.min.js", read("react-dom", "umd", "react-dom.production.min.js"));

for (const name of fs.readdirSync(outDir).filter((n) => /\.(js|css)$/.test(n))) {
  const text = fs.readFileSync(path.join(outDir, name), "utf8");
  // Nothing may be fetched at run time: no source maps, no imports, fonts only as data: URIs.
  const css = name.endsWith(".css");
  if (/[#@] sourceMappingURL=/.test(text) || (css && /@import|url\((?!\s*["']?data:)/.test(text))) {
    throw new Error(`${name} references an external resource`);
  }
}

// The packages webpack put into graphiql's bundle, named by its module ids:
// "../../../node_modules/<package>/..." and "../../<monorepo package dir>/...".
const monorepo = {
  "codemirror-graphql": "codemirror-graphql",
  "graphiql-react": "@graphiql/react",
  "graphiql-toolkit": "@graphiql/toolkit",
  "graphql-language-service": "graphql-language-service",
};
const bundled = new Set();
for (const [, id] of graphiqlJs.matchAll(/^\/\*\*\*\/ "([^"]+)":/gm)) {
  const external = id.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  const local = id.match(/^\.\.\/\.\.\/([^/.][^/]*)\//);
  if (external) bundled.add(external[1]);
  else if (local) bundled.add(monorepo[local[1]] ?? local[1]);
}
bundled.delete("graphiql");
bundled.delete("react");
bundled.delete("react-dom");

function licenceOf(name) {
  const dir = path.join(nodeModules, name);
  const meta = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
  const file = fs.readdirSync(dir).find((n) => /^(licen[cs]e|copying)/i.test(n));
  let text = file && fs.readFileSync(path.join(dir, file), "utf8");
  if (!text) {
    const readme = fs.readdirSync(dir).find((n) => /^readme/i.test(n));
    const section = readme && fs.readFileSync(path.join(dir, readme), "utf8").match(/^#+ *Licen[cs]e.*$[\s\S]*/im);
    text = section?.[0];
  }
  if (!text) {
    const author = typeof meta.author === "object" ? meta.author.name : meta.author;
    const repository = meta.repository?.url ?? meta.repository;
    text = `The npm package ships no licence text; package.json declares ${meta.license}.`;
    text += `\nAuthor: ${author || "(not declared)"}. Repository: ${repository}.`;
  }
  return `${"=".repeat(80)}\n${name}@${meta.version} (${meta.license})\n${"-".repeat(80)}\n\n${text.trim()}\n`;
}

const header = `Third-party software vendored in this folder.

graphiql.min.js, graphiql.min.css  graphiql (its UMD bundle, minified with esbuild)
react.production.min.js            react (UMD production build)
react-dom.production.min.js        react-dom (UMD production build)

graphiql's bundle includes the other packages below; their licence texts are taken from the
versions that build/package-lock.json installs. The fonts embedded in graphiql.min.css follow.
`;
const sections = ["graphiql", "react", "react-dom", ...[...bundled].sort()].map(licenceOf);
const fonts = fs.readFileSync(path.join(buildDir, "fonts-LICENSE.txt"), "utf8");
write("THIRD_PARTY_LICENSES.txt", [header, ...sections, `${"=".repeat(80)}\n${fonts}`].join("\n"));
console.log(`vendored GraphiQL into ${outDir} (${bundled.size} bundled packages)`);
