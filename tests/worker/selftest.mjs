#!/usr/bin/env node
// Self-test of the Cloudflare KV stand-in: starts harness.mjs on a free port
// and exercises every route and fault kind.  Prints TAP; exits non-zero when
// a test fails.  Needs only node >= 18 (global fetch) and `npm ci` here.
//
//   cd tests/worker && npm ci && node selftest.mjs

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";
import fs from "node:fs";
import os from "node:os";
import net from "node:net";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const HARNESS = path.join(HERE, "harness.mjs");
const ACCOUNT = "0123456789abcdef0123456789abcdef";
const NAMESPACE = "fedcba9876543210fedcba9876543210";
const TOKEN = "test-token";
const OVERALL_TIMEOUT_MS = 55000;

// ------------------------------------------------------------ utilities ---

class AssertionError extends Error {}
function assert(cond, msg) {
  if (!cond) throw new AssertionError(msg);
}
function eq(actual, expected, msg) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new AssertionError(`${msg}: expected ${e}, got ${a}`);
}

const children = new Set();

function startHarness(args = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [HARNESS, "--port", "0", ...args], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    children.add(child);
    let out = "";
    let err = "";
    let ready = false;
    const timer = setTimeout(() => {
      reject(new Error(`harness not ready in 30 s; stderr: ${err}`));
    }, 30000);
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stdout.on("data", (d) => {
      out += d;
      if (!ready && out.includes("\n")) {
        ready = true;
        clearTimeout(timer);
        const line = out.slice(0, out.indexOf("\n"));
        const m = /^READY (http:\/\/127\.0\.0\.1:(\d+))$/.exec(line);
        if (!m) {
          reject(new Error(`unexpected first line ${JSON.stringify(line)}`));
          return;
        }
        resolve({
          child,
          base: m[1],
          port: Number(m[2]),
          line,
          stdout: () => out,
          stderr: () => err,
          exited: new Promise((res) => child.on("exit", (code, sig) => res({ code, sig }))),
        });
      }
    });
    child.stderr.on("data", (d) => {
      err += d;
    });
    child.on("exit", (code) => {
      children.delete(child);
      if (!ready) {
        clearTimeout(timer);
        reject(new Error(`harness exited with ${code} before READY; stderr: ${err}`));
      }
    });
  });
}

async function stopHarness(h) {
  h.child.kill("SIGTERM");
  const t = setTimeout(() => h.child.kill("SIGKILL"), 10000);
  const r = await h.exited;
  clearTimeout(t);
  return r;
}

function portClosed(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    s.on("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.on("error", () => resolve(true));
  });
}

let H; // the main harness
const nsPath = (account = ACCOUNT, namespace = NAMESPACE) =>
  `/client/v4/accounts/${account}/storage/kv/namespaces/${namespace}`;

async function api(method, rel, { body, token = TOKEN, headers = {}, raw = false, base, account, namespace, signal } = {}) {
  const h = { ...headers };
  if (token !== null) h.authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined) {
    payload = typeof body === "string" ? body : JSON.stringify(body);
    h["content-type"] ??= "application/json";
  }
  const started = Date.now();
  const res = await fetch(`${base ?? H.base}${nsPath(account, namespace)}${rel}`, {
    method,
    headers: h,
    body: payload,
    signal,
  });
  const text = await res.text();
  let json;
  if (!raw && (res.headers.get("content-type") ?? "").includes("application/json")) {
    json = JSON.parse(text);
  }
  return { status: res.status, headers: res.headers, text, json, ms: Date.now() - started };
}

async function harness(method, rel, body) {
  const res = await fetch(`${H.base}${rel}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

async function faults(list) {
  const r = await harness("POST", "/__harness/faults", list);
  eq(r.status, 200, "POST /__harness/faults status");
  return r;
}

async function getJson(rel) {
  const res = await fetch(`${H.base}${rel}`);
  return { status: res.status, json: await res.json() };
}

function items(n, prefix, extra = {}) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const key = `${prefix}${String(i).padStart(5, "0")}`;
    out.push({ key, value: JSON.stringify({ tenant: key, n: i }), metadata: { version: i }, ...extra });
  }
  return out;
}

function expectError(r, status, code, what) {
  eq(r.status, status, `${what}: status`);
  assert(r.json, `${what}: JSON body expected, got ${r.text.slice(0, 200)}`);
  eq(r.json.success, false, `${what}: success`);
  assert(Array.isArray(r.json.errors) && r.json.errors.length > 0, `${what}: errors`);
  if (code !== undefined) eq(r.json.errors[0].code, code, `${what}: error code`);
}

function expectHtml(r, status, needle, what) {
  eq(r.status, status, `${what}: status`);
  assert((r.headers.get("content-type") ?? "").startsWith("text/html"), `${what}: content-type ${r.headers.get("content-type")}`);
  assert(r.text.includes(needle), `${what}: body lacks ${JSON.stringify(needle)}`);
  assert(r.json === undefined, `${what}: body must not be JSON`);
}

async function listAll(prefix, limit) {
  const names = [];
  let cursor = "";
  let pages = 0;
  const sizes = [];
  for (;;) {
    const q = new URLSearchParams();
    if (prefix !== undefined) q.set("prefix", prefix);
    if (limit !== undefined) q.set("limit", String(limit));
    if (cursor) q.set("cursor", cursor);
    const r = await api("GET", `/keys?${q}`);
    eq(r.status, 200, "list status");
    eq(r.json.success, true, "list success");
    assert(r.json.result_info && typeof r.json.result_info.cursor === "string", "list result_info.cursor");
    eq(r.json.result_info.count, r.json.result.length, "list result_info.count");
    for (const k of r.json.result) names.push(k.name);
    sizes.push(r.json.result.length);
    pages++;
    cursor = r.json.result_info.cursor;
    if (cursor === "") break;
    assert(pages < 100, "too many pages");
  }
  return { names, pages, sizes };
}

async function valueOf(key) {
  const r = await api("GET", `/values/${encodeURIComponent(key)}`, { raw: true });
  return r.status === 200 ? r.text : null;
}

// ---------------------------------------------------------------- tests ---

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

test("harness starts on 127.0.0.1 and prints one READY line", async () => {
  H = await startHarness();
  assert(H.port > 0, "port");
  const r = await getJson("/__harness/health");
  eq(r.json.ok, true, "health");
  eq(r.json.account, ACCOUNT, "default account id");
  eq(r.json.namespace, NAMESPACE, "default namespace id");
});

test("missing or wrong bearer token -> 401 code 10000", async () => {
  expectError(await api("GET", "/keys", { token: null }), 401, 10000, "no token");
  const r = await api("GET", "/keys", { token: "wrong" });
  expectError(r, 401, 10000, "wrong token");
  eq(r.json.errors[0].message, "Authentication error", "message");
  expectError(await api("PUT", "/bulk", { token: "wrong", body: items(1, "x/") }), 401, 10000, "bulk put wrong token");
  eq(await valueOf("x/00000"), null, "nothing written with a wrong token");
});

test("wrong namespace -> 404 code 10013; wrong account -> 400 codes 7003, 7000", async () => {
  expectError(await api("GET", "/keys", { namespace: "f".repeat(32) }), 404, 10013, "wrong namespace");
  const r7 = await api("PUT", "/bulk", { account: "a".repeat(32), body: items(1, "x/") });
  expectError(r7, 400, 7003, "wrong account");
  eq(r7.json.errors[1].code, 7000, "wrong account: second error");
  const r = await fetch(`${H.base}/client/v4/nonsense`, { headers: { authorization: `Bearer ${TOKEN}` } });
  eq(r.status, 404, "unknown API path");
});

test("PUT bulk writes keys, values and metadata", async () => {
  const body = [
    { key: "t/alpha", value: JSON.stringify({ openai_api_key: "sk-alpha", plan: "pro" }), metadata: { version: 7 } },
    { key: "t/beta", value: "plain text value" },
    { key: "odd key/ü?#%", value: "odd", metadata: { version: 1 } },
    { key: "t/b64", value: Buffer.from([0, 1, 2, 255]).toString("base64"), base64: true },
  ];
  const r = await api("PUT", "/bulk", { body });
  eq(r.status, 200, "status");
  eq(r.json, { success: true, errors: [], messages: [], result: { successful_key_count: 4, unsuccessful_keys: [] } }, "reply");
});

test("GET values/{key} returns the raw value; percent-decoded key", async () => {
  const r = await api("GET", "/values/t%2Falpha", { raw: true });
  eq(r.status, 200, "status");
  eq(JSON.parse(r.text), { openai_api_key: "sk-alpha", plan: "pro" }, "raw value, no envelope");
  eq(await valueOf("odd key/ü?#%"), "odd", "odd key");
  const b = await fetch(`${H.base}${nsPath()}/values/t%2Fb64`, { headers: { authorization: `Bearer ${TOKEN}` } });
  eq([...new Uint8Array(await b.arrayBuffer())], [0, 1, 2, 255], "base64 value stored as bytes");
});

test("GET values/{missing} -> 404 code 10009", async () => {
  const r = await api("GET", "/values/t%2Fnope");
  expectError(r, 404, 10009, "missing key");
  eq(r.json.errors[0].message, "get: 'key not found'", "message");
});

test("GET metadata/{key}", async () => {
  const r = await api("GET", "/metadata/t%2Falpha");
  eq(r.status, 200, "status");
  eq(r.json.success, true, "success");
  eq(r.json.result, { version: 7 }, "metadata");
  eq((await api("GET", "/metadata/t%2Fbeta")).json.result, null, "no metadata -> null");
  expectError(await api("GET", "/metadata/t%2Fnope"), 404, 10009, "missing key");
});

test("PUT bulk validation -> 400, nothing written", async () => {
  const good = { key: "v/good", value: "g" };
  const bad = [
    ["not JSON", "{nope"],
    ["not an array", { key: "a", value: "b" }],
    ["empty key", [good, { key: "", value: "x" }]],
    ["key '.'", [good, { key: ".", value: "x" }]],
    ["key '..'", [good, { key: "..", value: "x" }]],
    ["513-byte key", [good, { key: "k".repeat(513), value: "x" }]],
    ["key not a string", [good, { key: 5, value: "x" }]],
    ["value not a string", [good, { key: "v/x", value: { a: 1 } }]],
    ["metadata over 1024 bytes", [good, { key: "v/x", value: "x", metadata: { pad: "p".repeat(1100) } }]],
    ["expiration_ttl under 60", [good, { key: "v/x", value: "x", expiration_ttl: 10 }]],
    ["10,001 items", items(10001, "v/many/")],
  ];
  for (const [what, body] of bad) {
    const r = await api("PUT", "/bulk", { body });
    expectError(r, 400, undefined, what);
  }
  eq(await valueOf("v/good"), null, "valid item of a rejected batch not written");
  eq(await valueOf("v/many/00000"), null, "nothing of the 10,001 batch written");
  const okKey = "k".repeat(512);
  const r = await api("PUT", "/bulk", { body: [{ key: okKey, value: "x", metadata: { pad: "p".repeat(900) } }] });
  eq(r.status, 200, "512-byte key and ~1 KB metadata accepted");
});

test("PUT bulk with 10,000 items (the limit) is accepted", async () => {
  const r = await api("PUT", "/bulk", { body: items(10000, "big/") });
  eq(r.status, 200, "status");
  eq(r.json.result.successful_key_count, 10000, "count");
  eq(await valueOf("big/09999"), JSON.stringify({ tenant: "big/09999", n: 9999 }), "last value");
});

test("list pages >1000 keys with cursor, limit and prefix", async () => {
  const all = await listAll("big/", 1000);
  eq(all.names.length, 10000, "all keys listed");
  eq(new Set(all.names).size, 10000, "no duplicates");
  assert(all.pages >= 10, `pages ${all.pages}`);
  assert(all.sizes.every((n) => n <= 1000), "page size <= 1000");
  const sorted = [...all.names].sort();
  eq(all.names, sorted, "keys in order");
  const small = await listAll("big/0000", 10);
  eq(small.names.length, 10, "prefix big/0000 has 10 keys");
  const mid = await listAll("big/", 300);
  eq(mid.names.length, 10000, "limit 300 pages through all keys");
  const def = await api("GET", "/keys?prefix=big%2F");
  eq(def.json.result.length, 1000, "default limit 1000");
  assert(def.json.result_info.cursor !== "", "cursor when more keys remain");
  eq(def.json.result[0], { name: "big/00000", metadata: { version: 0 } }, "entry shape");
  const t = await listAll("t/");
  eq(t.names, ["t/alpha", "t/b64", "t/beta"], "prefix t/");
  eq(t.pages, 1, "one page");
});

test("list limit outside 10..1000 -> 400", async () => {
  for (const l of ["5", "1001", "abc"]) {
    expectError(await api("GET", `/keys?limit=${l}`), 400, undefined, `limit ${l}`);
  }
});

test("POST bulk/delete and DELETE bulk remove keys", async () => {
  const keys = [];
  for (let i = 0; i < 2500; i++) keys.push(`big/${String(i).padStart(5, "0")}`);
  let r = await api("POST", "/bulk/delete", { body: keys });
  eq(r.status, 200, "status");
  eq(r.json.result, { successful_key_count: 2500, unsuccessful_keys: [] }, "result");
  eq(await valueOf("big/00000"), null, "deleted");
  eq((await listAll("big/")).names.length, 7500, "7500 left");
  r = await api("DELETE", "/bulk", { body: ["t/beta", "never/existed"] });
  eq(r.status, 200, "older DELETE form status");
  eq(r.json.result.successful_key_count, 2, "count includes missing key");
  eq(await valueOf("t/beta"), null, "t/beta deleted");
  expectError(await api("POST", "/bulk/delete", { body: [""] }), 400, undefined, "empty key");
  expectError(await api("POST", "/bulk/delete", { body: { keys: [] } }), 400, undefined, "not an array");
  expectError(await api("POST", "/bulk/delete", { body: keys.concat(items(7501, "z").map((i) => i.key)) }), 400, undefined, "10,001 keys");
});

test("single value PUT/DELETE, bulk/get, token verify, namespace info", async () => {
  let r = await api("PUT", "/values/s%2Fone", { body: "hello", headers: { "content-type": "text/plain" } });
  eq(r.status, 200, "put status");
  eq(await valueOf("s/one"), "hello", "value");
  const form = new FormData();
  form.set("value", '{"a":1}');
  form.set("metadata", '{"version":2}');
  const res = await fetch(`${H.base}${nsPath()}/values/s%2Ftwo`, { method: "PUT", body: form, headers: { authorization: `Bearer ${TOKEN}` } });
  eq(res.status, 200, "multipart put");
  eq((await api("GET", "/metadata/s%2Ftwo")).json.result, { version: 2 }, "multipart metadata");
  r = await api("POST", "/bulk/get", { body: { keys: ["s/two", "s/none"], type: "json", withMetadata: true } });
  eq(r.json.result, { values: { "s/two": { value: { a: 1 }, metadata: { version: 2 } }, "s/none": null } }, "bulk get");
  r = await api("DELETE", "/values/s%2Fone");
  eq(r.status, 200, "delete");
  eq(await valueOf("s/one"), null, "deleted");
  const v = await fetch(`${H.base}/client/v4/user/tokens/verify`, { headers: { authorization: `Bearer ${TOKEN}` } });
  eq((await v.json()).result.status, "active", "token verify");
  const n = await fetch(`${H.base}/client/v4/accounts/${ACCOUNT}/storage/kv/namespaces`, { headers: { authorization: `Bearer ${TOKEN}` } });
  eq((await n.json()).result[0].id, NAMESPACE, "namespace list");
});

test("tokens: user, account-owned, read-only, malformed", async () => {
  const get = async (p, tok) => {
    const r = await fetch(`${H.base}/client/v4${p}`, { headers: { authorization: tok } });
    return { status: r.status, json: await r.json() };
  };
  const uv = "/user/tokens/verify";
  const av = `/accounts/${ACCOUNT}/tokens/verify`;
  eq((await get(uv, "Bearer test-readonly-token")).json.result.status, "active", "read-only verifies as a user token");
  let r = await get(uv, "Bearer test-account-token");
  eq([r.status, r.json.errors[0].code], [401, 1000], "account token at /user");
  eq((await get(av, "Bearer test-account-token")).json.result.status, "active", "account token at /accounts");
  r = await get(av, `Bearer ${TOKEN}`);
  eq([r.status, r.json.errors[0].code], [401, 1000], "user token at /accounts");
  r = await get(uv, 'Bearer "quoted"');
  eq([r.status, r.json.errors[0].code, r.json.errors[0].error_chain[0].code], [400, 6003, 6111], "malformed header");
  eq((await api("GET", "/keys", { token: "test-account-token" })).status, 200, "account token reads");
  eq((await api("GET", "/keys", { token: "test-readonly-token" })).status, 200, "read-only token reads");
  expectError(await api("POST", "/bulk/delete", { token: "test-readonly-token", body: ["k"] }), 403, 10000, "read-only token writes");
});

test("faults cf_error and challenge", async () => {
  await faults([
    { route: "bulk_put", kind: "cf_error", status: 429, code: 10048, message: "KV put() limit exceeded for the day." },
    { route: "namespaces", kind: "challenge" },
  ]);
  expectError(await api("PUT", "/bulk", { body: items(1, "c/") }), 429, 10048, "daily limit");
  const r = await api("GET", "", { raw: true });
  eq([r.status, r.headers.get("cf-mitigated")], [403, "challenge"], "challenge page");
});

test("consumer route reads env.TENANT_CONFIGS.get(tenantId, 'json')", async () => {
  const src = fs.readFileSync(path.join(HERE, "worker.js"), "utf8");
  assert(src.includes("const tenantConfig = await env.TENANT_CONFIGS.get(tenantId, 'json');"), "verbatim pattern in worker.js");
  assert(src.includes("tenantConfig.openai_api_key"), "property access in worker.js");
  let r = await api("PUT", "/bulk", { body: [
    { key: "acme", value: JSON.stringify({ openai_api_key: "sk-acme", region: "eu" }), metadata: { version: 1 } },
    { key: "wf/acme", value: JSON.stringify({ openai_api_key: "sk-prefixed" }), metadata: { version: 1 } },
  ] });
  eq(r.status, 200, "seed");
  eq(await getJson("/tenant/acme"), { status: 200, json: { tenant: "acme", config: { openai_api_key: "sk-acme", region: "eu" } } }, "config");
  eq(await getJson("/tenant/acme/openai_api_key"), { status: 200, json: { tenant: "acme", field: "openai_api_key", value: "sk-acme" } }, "field");
  eq(await getJson("/tenant/acme/region"), { status: 200, json: { tenant: "acme", field: "region", value: "eu" } }, "other field");
  eq((await getJson("/tenant/acme/nope")).json.value, null, "missing field -> null");
  eq((await getJson("/tenant/ghost")).json, { tenant: "ghost", config: null }, "missing tenant -> config null");
  eq((await getJson("/tenant/ghost/openai_api_key")).json.value, null, "missing tenant field -> null");
  eq((await getJson("/tenant/acme/openai_api_key?prefix=wf%2F")).json.value, "sk-prefixed", "?prefix=");
  await api("POST", "/bulk/delete", { body: ["acme"] });
  eq((await getJson("/tenant/acme")).json.config, null, "deleted tenant disappears");
});

test("Workers secrets: put, list (names only), delete; 10007, 10056; a Worker reads env.OPENAI_API_KEY", async () => {
  const sp = (script = "my-worker", account = ACCOUNT) => `${H.base}/client/v4/accounts/${account}/workers/scripts/${script}/secrets`;
  const call = async (method, url, body, token = TOKEN) => {
    const res = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: await res.json() };
  };
  await harness("POST", "/__harness/reset?data=1");
  let r = await call("PUT", sp(), { name: "OPENAI_API_KEY", text: "sk-one", type: "secret_text" });
  eq([r.status, r.json.success, r.json.result], [200, true, { name: "OPENAI_API_KEY", type: "secret_text" }], "put");
  await call("PUT", sp(), { name: "REGION", text: "eu", type: "secret_text" });
  r = await call("GET", sp());
  eq(r.json.result, [{ name: "OPENAI_API_KEY", type: "secret_text" }, { name: "REGION", type: "secret_text" }], "list: names and types, never a text");
  eq((await getJson("/worker/my-worker/openai")).json, { name: "OPENAI_API_KEY", value: "sk-one" }, "the Worker reads env.OPENAI_API_KEY");
  await call("PUT", sp(), { name: "OPENAI_API_KEY", text: "sk-two", type: "secret_text" });
  eq((await getJson("/worker/my-worker/env/OPENAI_API_KEY")).json.value, "sk-two", "a new value reaches the Worker");
  eq((await getJson("/worker/my-worker/env")).json.names, ["OPENAI_API_KEY", "REGION"], "the Worker's env names");
  r = await call("DELETE", `${sp()}/REGION`);
  eq([r.status, r.json.success], [200, true], "delete");
  expectError({ ...(await call("DELETE", `${sp()}/REGION`)), text: "" }, 404, 10056, "delete a missing secret");
  eq((await getJson("/worker/my-worker/env/REGION")).json.value, null, "a deleted secret leaves the Worker's env");
  expectError({ ...(await call("GET", sp("no-such-worker"))), text: "" }, 404, 10007, "unknown script");
  expectError({ ...(await call("GET", sp(), undefined, "bad")), text: "" }, 401, 10000, "bad token");
  expectError({ ...(await call("PUT", sp(), { name: "bad-name", text: "x", type: "secret_text" })), text: "" }, 400, undefined, "bad name");
  expectError({ ...(await call("PUT", sp(), { name: "X", text: "x", type: "plain_text" })), text: "" }, 400, undefined, "bad type");
  eq((await getJson("/__harness/secrets")).json.scripts, { "my-worker": ["OPENAI_API_KEY"] }, "harness view: names only");
  const log = (await getJson("/__harness/requests")).json.requests;
  assert(!JSON.stringify(log).includes("sk-two"), "the request log holds no secret text");
  const q = (await getJson("/__harness/stats")).json.requests;
  eq([q.secret_put, q.secret_list, q.secret_delete], [5, 3, 2], "per-route counts");
  r = await harness("POST", "/__harness/reset?data=1");
  eq(r.json.deleted_secrets, 1, "reset?data=1 clears secrets");
});

test("Workers secrets: the read-only token lists them but PUT and DELETE give 403 10000", async () => {
  const sp = `${H.base}/client/v4/accounts/${ACCOUNT}/workers/scripts/my-worker/secrets`;
  const call = async (method, url, body, token) => {
    const res = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: await res.json(), text: "" };
  };
  await harness("POST", "/__harness/reset?data=1");
  await call("PUT", sp, { name: "REGION", text: "eu", type: "secret_text" }, TOKEN);
  const ro = "test-readonly-token";
  const r = await call("GET", sp, undefined, ro);
  eq([r.status, r.json.result], [200, [{ name: "REGION", type: "secret_text" }]], "read-only token lists");
  expectError(await call("PUT", sp, { name: "REGION", text: "x", type: "secret_text" }, ro), 403, 10000, "read-only token puts");
  expectError(await call("DELETE", `${sp}/REGION`, undefined, ro), 403, 10000, "read-only token deletes");
  expectError(await call("DELETE", `${sp}/MISSING`, undefined, ro), 403, 10000, "read-only token deletes a missing secret");
  eq((await getJson("/worker/my-worker/env/REGION")).json.value, "eu", "the secret is unchanged");
  await harness("POST", "/__harness/reset?data=1");
});

test("stats count requests per route; reset clears them", async () => {
  let r = await harness("POST", "/__harness/reset");
  eq(r.json.ok, true, "reset");
  await api("PUT", "/bulk", { body: items(3, "st/") });
  await api("GET", "/keys?prefix=st%2F");
  await api("GET", "/keys?prefix=st%2F");
  await api("GET", "/values/st%2F00000");
  await api("POST", "/bulk/delete", { body: ["st/00000"] });
  await api("GET", "/keys", { token: "bad" });
  await getJson("/tenant/x");
  r = await getJson("/__harness/stats");
  const q = r.json.requests;
  eq([q.bulk_put, q.list, q.get, q.bulk_delete, q.tenant], [1, 3, 1, 1, 1], "per-route counts");
  eq(r.json.total, 6, "total counts API requests only");
  const log = (await getJson("/__harness/requests")).json.requests;
  eq(log.map((e) => e.route), ["bulk_put", "list", "list", "get", "bulk_delete", "list"], "request log");
  eq(log[0].items, 3, "log item count");
  eq(log[5].status, 401, "log status");
  r = await harness("POST", "/__harness/reset");
  r = await getJson("/__harness/stats");
  eq(r.json.total, 0, "reset total");
  eq(r.json.requests.list, 0, "reset list");
  eq(await valueOf("st/00001"), "{\"tenant\":\"st/00001\",\"n\":1}", "reset keeps data");
  r = await harness("POST", "/__harness/reset?data=1");
  eq(r.json.ok, true, "reset data");
  eq(await valueOf("st/00001"), null, "reset?data=1 clears KV");
  eq((await listAll()).names.length, 0, "KV empty");
});

test("fault 429 with Retry-After seconds, HTTP-date, and none", async () => {
  const date = "Wed, 21 Oct 2026 07:28:00 GMT";
  await faults([
    { route: "bulk_put", kind: "429", retry_after: "2" },
    { route: "bulk_put", kind: "429", retry_after: date },
    { route: "bulk_put", kind: "429" },
  ]);
  const body = items(2, "r/");
  let r = await api("PUT", "/bulk", { body });
  expectError(r, 429, 971, "429 #1");
  eq(r.headers.get("retry-after"), "2", "Retry-After seconds");
  eq(await valueOf("r/00000"), null, "not stored on 429");
  r = await api("PUT", "/bulk", { body });
  expectError(r, 429, 971, "429 #2");
  eq(r.headers.get("retry-after"), date, "Retry-After date");
  r = await api("PUT", "/bulk", { body });
  expectError(r, 429, 971, "429 #3");
  eq(r.headers.get("retry-after"), null, "no Retry-After");
  r = await api("PUT", "/bulk", { body });
  eq(r.status, 200, "queue drained, request succeeds");
  eq(await valueOf("r/00000"), body[0].value, "stored after retry");
});

test("fault 500 (JSON), 502/503 (HTML), 524 (HTML timeout page), 413 (HTML)", async () => {
  await faults([
    { route: "bulk_put", kind: "500" },
    { route: "bulk_put", kind: "502" },
    { route: "bulk_put", kind: "503" },
    { route: "bulk_put", kind: "524" },
    { route: "bulk_put", kind: "413" },
  ]);
  const body = items(1, "e/");
  const r500 = await api("PUT", "/bulk", { body });
  expectError(r500, 500, undefined, "500");
  expectHtml(await api("PUT", "/bulk", { body }), 502, "502", "502");
  expectHtml(await api("PUT", "/bulk", { body }), 503, "503", "503");
  expectHtml(await api("PUT", "/bulk", { body }), 524, "A timeout occurred", "524");
  expectHtml(await api("PUT", "/bulk", { body }), 413, "413", "413");
  eq(await valueOf("e/00000"), null, "nothing stored");
});

test("fault 524 with apply:true stores the data and still answers 524", async () => {
  await faults([{ route: "bulk_put", kind: "524", apply: true }]);
  const body = items(2, "ap/");
  expectHtml(await api("PUT", "/bulk", { body }), 524, "A timeout occurred", "524");
  eq(await valueOf("ap/00001"), body[1].value, "stored behind the 524");
});

test("fault 400, 401, 403 (JSON envelopes)", async () => {
  await faults([
    { route: "list", kind: "400" },
    { route: "list", kind: "401" },
    { route: "list", kind: "403" },
  ]);
  expectError(await api("GET", "/keys"), 400, undefined, "400");
  expectError(await api("GET", "/keys"), 401, 10000, "401");
  expectError(await api("GET", "/keys"), 403, 10000, "403");
  eq((await api("GET", "/keys")).status, 200, "then normal");
});

test("fault partial: listed keys / first count items are unsuccessful", async () => {
  await faults([
    { route: "bulk_put", kind: "partial", keys: ["p/00001", "p/00003"] },
    { route: "bulk_put", kind: "partial", count: 2 },
  ]);
  const body = items(5, "p/");
  let r = await api("PUT", "/bulk", { body });
  eq(r.status, 200, "status");
  eq(r.json.success, true, "success stays true");
  eq(r.json.result, { successful_key_count: 3, unsuccessful_keys: ["p/00001", "p/00003"] }, "result");
  eq(await valueOf("p/00001"), null, "unsuccessful key not stored");
  eq(await valueOf("p/00002"), body[2].value, "other keys stored");
  const body2 = items(4, "q/");
  r = await api("PUT", "/bulk", { body: body2 });
  eq(r.json.result, { successful_key_count: 2, unsuccessful_keys: ["q/00000", "q/00001"] }, "count form");
  eq(await valueOf("q/00000"), null, "first not stored");
  eq(await valueOf("q/00003"), body2[3].value, "rest stored");
  r = await api("PUT", "/bulk", { body: body2 });
  eq(r.json.result.unsuccessful_keys, [], "retry succeeds");
});

test("fault slow: delay_ms then a normal answer", async () => {
  await faults([{ route: "get", kind: "slow", delay_ms: 400 }]);
  await api("PUT", "/bulk", { body: [{ key: "slow/a", value: "A" }] });
  const r = await api("GET", "/values/slow%2Fa", { raw: true });
  eq(r.status, 200, "status");
  eq(r.text, "A", "value");
  assert(r.ms >= 380, `took ${r.ms} ms, expected >= 400`);
  // The fault was used up by the first request, so the second is not
  // delayed: counted, not timed.
  const before = (await harness("GET", "/__harness/stats")).json;
  const r2 = await api("GET", "/values/slow%2Fa", { raw: true });
  eq(r2.status, 200, "second status");
  const after = (await harness("GET", "/__harness/stats")).json;
  eq(before.faults_pending, 0, "fault used up");
  eq(after.faulted, before.faulted, "second request not faulted");
});

test("faults: times, route matching, 'any', queue view, validation", async () => {
  await harness("POST", "/__harness/reset");
  await faults([
    { route: "bulk_delete", kind: "500", times: 2 },
    { route: "any", kind: "502" },
  ]);
  let q = (await getJson("/__harness/faults")).json.faults;
  eq(q.map((f) => [f.route, f.kind, f.times]), [["bulk_delete", "500", 2], ["any", "502", 1]], "queue");
  expectHtml(await api("GET", "/keys"), 502, "502", "'any' matches list");
  eq((await api("GET", "/keys")).status, 200, "'any' consumed");
  expectError(await api("POST", "/bulk/delete", { body: ["a"] }), 500, undefined, "delete #1");
  q = (await getJson("/__harness/faults")).json.faults;
  eq(q.map((f) => f.times), [1], "times decremented");
  expectError(await api("DELETE", "/bulk", { body: ["a"] }), 500, undefined, "delete #2 (older form)");
  eq((await api("POST", "/bulk/delete", { body: ["a"] })).status, 200, "delete #3 ok");
  eq((await getJson("/__harness/faults")).json.faults, [], "queue empty");
  const s = (await getJson("/__harness/stats")).json;
  eq(s.faulted, 3, "faulted count");
  for (const bad of [{ kind: "418" }, { route: "nope", kind: "500" }, { kind: "500", times: 0 }, "x"]) {
    const r = await harness("POST", "/__harness/faults", [bad]);
    eq(r.status, 400, `invalid fault ${JSON.stringify(bad)}`);
  }
  await faults([{ kind: "500" }]);
  await harness("POST", "/__harness/reset");
  eq((await getJson("/__harness/faults")).json.faults, [], "reset clears faults");
});

test("fault empty_page: an empty list page whose cursor resumes", async () => {
  await harness("POST", "/__harness/reset?data=1");
  await api("PUT", "/bulk", { body: items(25, "ep/") });
  await faults([{ route: "list", kind: "empty_page", times: 2 }]);
  const first = await api("GET", "/keys?prefix=ep%2F&limit=10");
  eq(first.json.result, [], "empty page");
  assert(first.json.result_info.cursor !== "", "cursor given");
  const all = await listAll("ep/", 10);
  eq(all.names.length, 25, "all keys seen after empty pages");
  eq(all.sizes[0], 0, "second empty page");
});

test("faults cursor_cycle and endless_pages: listings that never end", async () => {
  await harness("POST", "/__harness/reset?data=1");
  await faults([{ route: "list", kind: "cursor_cycle", cursors: ["x", "y"], times: 3 }]);
  const seen = [];
  for (let n = 0; n < 3; n++) {
    const r = await api("GET", "/keys?limit=10");
    eq(r.json.result, [], "empty page");
    seen.push(r.json.result_info.cursor);
  }
  eq(seen, ["x", "y", "x"], "cursors round and round");
  await faults([{ route: "list", kind: "endless_pages", times: 2 }]);
  const a = await api("GET", "/keys?limit=10");
  const b = await api("GET", "/keys?limit=10");
  assert(a.json.result_info.cursor !== "" && b.json.result_info.cursor !== "" &&
      a.json.result_info.cursor !== b.json.result_info.cursor, "a new cursor each time");
});

test("a second namespace; faults slow_reply and ratelimit", async () => {
  await harness("POST", "/__harness/reset?data=1");
  const NS2 = "00112233445566778899aabbccddeeff";
  const w = await api("PUT", "/bulk", { body: [{ key: "n2", value: "{\"a\":1}" }], namespace: NS2 });
  eq(w.status, 200, "bulk into the second namespace");
  eq(await valueOf("n2"), null, "not in the first namespace");
  const t = await getJson(`/tenant/n2?namespace=${NS2}`);
  eq(t.json.config.a, 1, "consumer route reads the second namespace");
  eq((await getJson("/tenant/n2")).json.config, null, "and not the first");
  // slow_reply: stored before the (late) answer.
  await faults([{ route: "bulk_put", kind: "slow_reply", delay_ms: 1500 }]);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const p = api("PUT", "/bulk", { body: [{ key: "late", value: "v" }] });
  let seen = null;
  for (let i = 0; i < 50 && seen === null; i++) {
    await sleep(20);
    seen = await valueOf("late");
  }
  eq(seen, "v", "written before the answer came");
  eq((await p).status, 200, "then answered");
  await faults([{ route: "list", kind: "ratelimit", reset: 7 }]);
  const r = await api("GET", "/keys");
  eq(r.status, 200, "ratelimit answers normally");
  eq(r.headers.get("ratelimit"), '"default";r=0;t=7', "Ratelimit header");
  const bad = await harness("POST", "/__harness/faults", [{ kind: "ratelimit", reset: 301 }]);
  eq(bad.status, 400, "reset over 300 refused");
  await harness("POST", "/__harness/reset?data=1");
  eq((await getJson(`/tenant/n2?namespace=${NS2}`)).json.config, null, "reset clears both");
});

test("faults scoped by namespace or script hit only that target", async () => {
  await harness("POST", "/__harness/reset?data=1");
  const NS2 = "00112233445566778899aabbccddeeff";
  const secrets = `/client/v4/accounts/${ACCOUNT}/workers/scripts/my-worker/secrets`;
  const secretPut = () => fetch(`${H.base}${secrets}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "SCOPED", text: "t", type: "secret_text" }),
  });
  await faults([
    { route: "bulk_put", namespace: NS2, kind: "500" },
    { route: "secret_put", script: "other-worker", kind: "500" },
    { route: "any", namespace: NAMESPACE, kind: "502" },
  ]);
  // The secrets route names no namespace: only an unscoped fault or one
  // scoped to its script would hit it.
  eq((await secretPut()).status, 200, "secret_put of my-worker not faulted");
  expectHtml(await api("GET", "/keys"), 502, "502", "namespace-scoped 'any' hits the first namespace");
  eq((await api("PUT", "/bulk", { body: [{ key: "s1", value: "1" }] })).status, 200,
    "bulk_put of the first namespace not faulted");
  expectError(await api("PUT", "/bulk", { body: [{ key: "s2", value: "2" }], namespace: NS2 }),
    500, 10043, "bulk_put of the second namespace faulted");
  const q = (await getJson("/__harness/faults")).json.faults;
  eq(q.map((f) => [f.route, f.script]), [["secret_put", "other-worker"]], "the other script's fault still queued");
  const other = await fetch(`${H.base}/client/v4/accounts/${ACCOUNT}/workers/scripts/other-worker/secrets`, {
    method: "PUT",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "X", text: "t", type: "secret_text" }),
  });
  eq(other.status, 500, "script-scoped fault hits its script");
  await other.text();
  for (const bad of [{ kind: "500", namespace: "" }, { kind: "500", script: 5 }]) {
    const r = await harness("POST", "/__harness/faults", [bad]);
    eq(r.status, 400, `invalid fault ${JSON.stringify(bad)}`);
  }
  await harness("POST", "/__harness/reset?data=1");
});

// Polls the stats (bounded) until in_flight is n.
async function waitInFlight(n, what) {
  let got;
  for (let i = 0; i < 200; i++) {
    got = (await getJson("/__harness/stats")).json.in_flight;
    if (got === n) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new AssertionError(`${what}: in_flight stayed ${got}, expected ${n}`);
}

test("in_flight counts requests not answered yet; a reset forgets abandoned ones", async () => {
  await harness("POST", "/__harness/reset?data=1");
  eq((await getJson("/__harness/stats")).json.in_flight, 0, "none at rest");
  await faults([{ route: "get", kind: "slow", delay_ms: 3600000 }]);
  const ac = new AbortController();
  const held = api("GET", "/values/none", { headers: {}, raw: true, signal: ac.signal }).catch((e) => e);
  await waitInFlight(1, "held by an hour-long slow fault");
  // Other requests go on meanwhile; the held one is not in the log's
  // answered entries yet (status 0).
  eq((await api("GET", "/keys")).status, 200, "another request answered");
  const log = (await getJson("/__harness/requests")).json.requests;
  eq(log.filter((e) => e.route === "get").map((e) => e.status), [0], "held request not answered");
  ac.abort();
  await held;
  // workerd never resumes a handler whose client went away: a reset
  // forgets it, so one test's abandoned request does not count in the next.
  await harness("POST", "/__harness/reset");
  eq((await getJson("/__harness/stats")).json.in_flight, 0, "reset forgets the abandoned request");
  await faults([{ route: "get", kind: "slow_reply", delay_ms: 300 }]);
  eq((await api("GET", "/values/none")).status, 404, "slow_reply answered");
  eq((await getJson("/__harness/stats")).json.in_flight, 0, "none once answered");
});

test("harness writes only READY to stdout; SIGTERM stops it and frees the port", async () => {
  eq(H.stdout(), `${H.line}\n`, "stdout");
  const r = await stopHarness(H);
  eq(r.code, 0, `exit code (signal ${r.sig})`);
  assert(await portClosed(H.port), "port closed after exit");
  H = null;
});

test("--token/--account/--namespace and --persist survive a restart", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wfvault-kv-"));
  const acct = "a".repeat(32);
  const ns = "b".repeat(32);
  const args = ["--token", "tok-2", "--account", acct, "--namespace", ns, "--persist", dir];
  try {
    H = await startHarness(args);
    let r = await api("PUT", "/bulk", { token: "tok-2", account: acct, namespace: ns, body: [{ key: "keep", value: "kept", metadata: { version: 9 } }] });
    eq(r.status, 200, "custom ids accepted");
    expectError(await api("GET", "/keys"), 401, 10000, "default token refused");
    expectError(await api("GET", "/keys", { token: "tok-2" }), 400, 7003, "default account path refused");
    expectError(await api("GET", "/keys", { token: "tok-2", account: acct }), 404, 10013, "default namespace path refused");
    eq((await stopHarness(H)).code, 0, "stopped");
    H = await startHarness(args);
    r = await api("GET", "/values/keep", { token: "tok-2", account: acct, namespace: ns, raw: true });
    eq(r.text, "kept", "value persisted");
    eq((await stopHarness(H)).code, 0, "stopped again");
    H = null;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("SIGTERM stops the harness while a request waits out an hour-long slow fault", async () => {
  H = await startHarness();
  await faults([{ route: "list", kind: "slow", delay_ms: 3600000 }]);
  const held = api("GET", "/keys").catch((e) => e);
  await waitInFlight(1, "held");
  const r = await stopHarness(H);
  eq(r.code, 0, `exit code (signal ${r.sig})`);
  assert(await portClosed(H.port), "port closed after exit");
  H = null;
  await held;
});

test("bad arguments are refused with exit code 2", async () => {
  for (const args of [["--bogus"], ["--account", "xyz"], ["--port", "http"]]) {
    const child = spawn(process.execPath, [HARNESS, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    const code = await new Promise((res) => child.on("exit", res));
    eq(code, 2, `exit code for ${args.join(" ")}`);
    eq(out, "", "nothing on stdout");
  }
});

// ----------------------------------------------------------------- main ---

async function main() {
  const killer = setTimeout(() => {
    console.log(`Bail out! self-test exceeded ${OVERALL_TIMEOUT_MS / 1000} s`);
    for (const c of children) c.kill("SIGKILL");
    process.exit(1);
  }, OVERALL_TIMEOUT_MS);
  const started = Date.now();
  console.log("TAP version 13");
  console.log(`1..${tests.length}`);
  let failed = 0;
  for (let i = 0; i < tests.length; i++) {
    const { name, fn } = tests[i];
    try {
      const t0 = Date.now();
      await fn();
      console.log(`ok ${i + 1} - ${name}`);
      if (process.env.SELFTEST_TIMES) console.log(`# ${Date.now() - t0} ms`);
    } catch (e) {
      failed++;
      console.log(`not ok ${i + 1} - ${name}`);
      let msg = e instanceof AssertionError ? e.message : (e && e.stack) || String(e);
      if (e && e.cause) msg += `\ncause: ${(e.cause && e.cause.stack) || e.cause}`;
      for (const line of msg.split("\n")) console.log(`# ${line}`);
      if (H && H.stderr()) for (const line of H.stderr().trim().split("\n").slice(-10)) console.log(`# harness: ${line}`);
    }
  }
  if (H) await stopHarness(H).catch(() => {});
  for (const c of children) c.kill("SIGKILL");
  clearTimeout(killer);
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`# ${secs} s, node ${process.version}`);
  console.log(`selftest: ${tests.length - failed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

main();
