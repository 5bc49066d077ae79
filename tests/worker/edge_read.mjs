#!/usr/bin/env node
// What a Worker using edge/wfvault-config.js reads for one tenant from the
// stand-in's KV: fetches the exact value the agent wrote (REST API), puts
// it into the KV namespace of edge_worker.js on Miniflare, and prints that
// Worker's answer, {"ok":true,"config":...} or {"ok":false,"error":...}.
// Keys come from files (never argv), as Worker secrets would.
//
//   node edge_read.mjs API_BASE ACCOUNT NAMESPACE TOKEN_FILE TENANT
//        [--prefix P] [--key-file F] [--previous-key-file F]
//        [--allow-plaintext]
import fs from "node:fs";
import { startEdge } from "./edge.mjs";

function die(msg) {
  process.stderr.write(`edge_read: ${msg}\n`);
  process.exit(2);
}

const argv = process.argv.slice(2);
if (argv.length < 5) die("usage: API_BASE ACCOUNT NAMESPACE TOKEN_FILE TENANT [options]");
const [base, account, namespace, tokenFile, tenant] = argv;
let prefix = "";
let query = "";
const bindings = {};
for (let i = 5; i < argv.length; i++) {
  const need = () => (i + 1 < argv.length ? argv[++i] : die(`${argv[i]} needs a value`));
  switch (argv[i]) {
    case "--prefix":
      prefix = need();
      break;
    case "--key-file":
      bindings.WFVAULT_SEAL_KEY = fs.readFileSync(need(), "utf8");
      break;
    case "--previous-key-file":
      bindings.WFVAULT_SEAL_KEY_PREVIOUS = fs.readFileSync(need(), "utf8");
      break;
    case "--allow-plaintext":
      query = "&allow_plaintext=1";
      break;
    default:
      die(`unknown argument ${argv[i]}`);
  }
}

const token = fs.readFileSync(tokenFile, "utf8").trim();
const key = prefix + tenant;
const r = await fetch(`${base}/accounts/${account}/storage/kv/namespaces/${namespace}/values/${encodeURIComponent(key)}`, {
  headers: { authorization: `Bearer ${token}` },
});
let value = null;
if (r.status === 200) value = await r.text();
else if (r.status !== 404) die(`the stand-in answered ${r.status}`);

const E = await startEdge([{ name: "reader", bindings }]);
try {
  if (value !== null) await E.kv.put(key, value);
  const out = await E.read("reader", tenant, `?prefix=${encodeURIComponent(prefix)}${query}`);
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  await E.dispose();
}
