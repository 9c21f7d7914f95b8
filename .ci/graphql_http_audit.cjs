// The graphql-http audit (GraphQL over HTTP spec compliance) against a live
// server: node .ci/graphql_http_audit.cjs <url> <bearer token>
// Needs the npm packages graphql-http and graphql (NODE_PATH); .ci/run
// installs them. Exit 1 on any error or warning.
const { auditServer } = require("graphql-http");

async function main() {
  const [url, token] = process.argv.slice(2);
  if (!url || !token) {
    console.error("usage: node graphql_http_audit.cjs <url> <token>");
    process.exit(2);
  }
  const fetchFn = (input, init = {}) => {
    const headers = new Headers(init.headers || {});
    headers.set("authorization", `Bearer ${token}`);
    return fetch(input, { ...init, headers });
  };
  const results = await auditServer({ url, fetchFn });
  let ok = 0;
  const bad = [];
  for (const r of results) {
    if (r.status === "ok") ok++;
    else bad.push(r);
  }
  for (const r of bad) {
    let body = "";
    try {
      body = await r.response.text();
    } catch (_) {}
    console.log(`${r.status.toUpperCase()} ${r.id} ${r.name}: ${r.reason}`);
    if (body) console.log(`    ${r.response.status} ${r.response.headers.get("content-type")} ${body.slice(0, 300)}`);
  }
  const warnings = bad.filter((r) => r.status === "warn").length;
  const errors = bad.filter((r) => r.status === "error").length;
  console.log(`graphql-http audit: ${results.length} audits, ${ok} ok, ${warnings} warnings, ${errors} errors`);
  process.exit(warnings + errors === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
