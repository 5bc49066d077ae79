// wfvault test stand-in for the Cloudflare Workers KV REST API.
//
// Runs inside workerd (through Miniflare, see harness.mjs) with a real KV
// binding named TENANT_CONFIGS.  It serves:
//   * /client/v4/...   the subset of the Cloudflare REST API the sync agent uses,
//                      shaped like Cloudflare's replies (JSON envelope);
//   * /tenant/...      a consumer route written the way a production Worker
//                      reads the synced configs;
//   * /__harness/...   test controls: request counters, request log, fault
//                      injection, reset.
//
// Bindings (set by harness.mjs): TENANT_CONFIGS (KV), API_TOKEN (a user
// token that may write), ACCOUNT_TOKEN (a token owned by ACCOUNT_ID: it
// verifies only at /accounts/{id}/tokens/verify), READONLY_TOKEN (a user
// token that may read but gets 10000 on writes), ACCOUNT_ID, NAMESPACE_ID,
// SCRIPTS and CONSUMER (the Workers secrets routes and their consumer
// Worker: secrets.mjs).
//
// All harness state (counters, fault queue, request log) lives in module
// globals: workerd runs this Worker in one isolate and JavaScript is single
// threaded, so updates cannot race.

import {
  SECRET_ROUTES, parseSecretsPath, handleSecrets, handleConsumer, secretNames,
  clearSecrets,
} from "./secrets.mjs";

// --------------------------------------------------------------- limits ---

const MAX_BULK_ITEMS = 10000;
const MAX_KEY_BYTES = 512;
const MAX_METADATA_BYTES = 1024;
const MAX_VALUE_BYTES = 25 * 1024 * 1024;
const MAX_BULK_BODY_BYTES = 100 * 1000 * 1000;
const MAX_BULK_GET_KEYS = 100;
const MIN_EXPIRATION_TTL = 60;
const LIST_LIMIT_MIN = 10;
const LIST_LIMIT_MAX = 1000;
const WRITE_CONCURRENCY = 8;
const YIELD_EVERY = 200;
const YIELD_MS = 1;
const REQUEST_LOG_MAX = 1000;
// The longest delay_ms a fault may ask for: an hour, a request_timeout's
// maximum, for a Cloudflare that accepts a request and never answers.
const MAX_DELAY_MS = 3600 * 1000;

// Error codes used in envelopes.  10000/10009/10013/971 are the ones Cloudflare
// is known to send; the others are this harness's choices.
const E_AUTH = 10000;
const E_BAD_REQUEST = 10001;
const E_KEY_NOT_FOUND = 10009;
const E_NAMESPACE_NOT_FOUND = 10013;
const E_RATE_LIMITED = 971;
const E_INTERNAL = 10043;
const E_NO_ROUTE = 7003;
const E_NO_ROUTE_URI = 7000;
const E_METHOD = 10405;
const E_INVALID_TOKEN = 1000;
const E_BAD_HEADERS = 6003;
const E_BAD_AUTH_HEADER = 6111;
// What Cloudflare accepts after "Bearer ": anything else is 6003/6111.
const TOKEN_FORMAT = /^[A-Za-z0-9_-]+$/;
// Routes that write: a read-only token gets 10000 there.
const WRITE_ROUTES = new Set(["bulk_put", "bulk_delete", "value_put", "value_delete"]);
const SECRET_WRITE_ROUTES = new Set(["secret_put", "secret_delete"]);

// API routes (names used by stats, the request log and faults).
const API_ROUTES = [
  "bulk_put", "bulk_delete", "bulk_get", "list", "get", "metadata",
  "value_put", "value_delete", "namespaces", "verify_token",
  "account_verify_token", ...SECRET_ROUTES, "unknown",
];
const FAULT_ROUTES = new Set([...API_ROUTES.filter((r) => r !== "unknown"), "any"]);
const FAULT_KINDS = new Set([
  "429", "500", "502", "503", "524", "partial", "slow", "empty_page",
  "cursor_cycle", "endless_pages", "400", "401", "403", "413",
  // cf_error: {status, code, message, chain?} a Cloudflare error envelope
  // (chain: a code for the entry's error_chain); challenge: the HTML page
  // with "cf-mitigated: challenge" the edge sends to suspected bots.
  "cf_error", "challenge",
  "slow_reply", "ratelimit",
]);
// Faults that answer a list request themselves.
const LIST_FAULTS = new Set(["empty_page", "cursor_cycle", "endless_pages"]);

// ---------------------------------------------------------------- state ---

const state = {
  counts: Object.create(null),
  total: 0,
  faulted: 0,
  faults: [],
  log: [],
  seq: 0,
  // API requests that arrived and are not answered yet (one object each):
  // a Set, so a request that ends after a reset cannot make it negative.
  inFlight: new Set(),
};

function resetCounters() {
  state.counts = Object.create(null);
  for (const r of API_ROUTES) state.counts[r] = 0;
  state.counts.tenant = 0;
  state.counts.consumer = 0;
  state.total = 0;
  state.faulted = 0;
  state.log = [];
  state.seq = 0;
  state.inFlight = new Set();
}
resetCounters();

// ------------------------------------------------------------- replies ---

function envelope(result, extra = {}) {
  return { success: true, errors: [], messages: [], result, ...extra };
}

function jsonReply(body, status = 200, headers = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

function ok(result, extra) {
  return jsonReply(envelope(result, extra));
}

function fail(status, code, message, headers) {
  return failMany(status, [{ code, message }], headers);
}

function failMany(status, errors, headers) {
  return jsonReply(
    { success: false, errors, messages: [], result: null },
    status,
    headers,
  );
}

// Who the Authorization header names: "user", "account", "readonly", null
// (unknown), or a Response for a header Cloudflare cannot parse.
function tokenOf(request, env) {
  const auth = request.headers.get("authorization");
  if (auth === null || auth === "") return null;
  const m = /^Bearer (.*)$/.exec(auth);
  if (!m || !TOKEN_FORMAT.test(m[1])) {
    return failMany(400, [{
      code: E_BAD_HEADERS,
      message: "Invalid request headers",
      error_chain: [{ code: E_BAD_AUTH_HEADER, message: "Invalid format for Authorization header" }],
    }]);
  }
  if (m[1] === env.API_TOKEN) return "user";
  if (env.ACCOUNT_TOKEN && m[1] === env.ACCOUNT_TOKEN) return "account";
  if (env.READONLY_TOKEN && m[1] === env.READONLY_TOKEN) return "readonly";
  return null;
}

function verified() {
  return ok({ id: "0".repeat(32), status: "active" }, {
    messages: [{ code: 10000, message: "This API Token is valid and active", type: null }],
  });
}

function htmlReply(status, title, detail, headers = {}) {
  const ray = Array.from(crypto.getRandomValues(new Uint8Array(8)))
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("");
  const page =
    `<!DOCTYPE html>\n<html lang="en-US">\n<head>\n` +
    `<title>api.cloudflare.com | ${status}: ${title}</title>\n` +
    `<meta charset="UTF-8" />\n</head>\n<body>\n` +
    `<div id="cf-wrapper"><div id="cf-error-details">\n` +
    `<h1><span class="cf-error-type">Error code</span> <span class="cf-error-code">${status}</span></h1>\n` +
    `<h2 class="cf-subheadline">${title}</h2>\n<p>${detail}</p>\n` +
    `<p>Cloudflare Ray ID: <strong>${ray}</strong></p>\n` +
    `</div></div>\n</body>\n</html>\n`;
  return new Response(page, {
    status,
    headers: { "content-type": "text/html; charset=UTF-8", ...headers },
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));


// ------------------------------------------------------------- helpers ---

const encoder = new TextEncoder();
const byteLength = (s) => encoder.encode(s).length;

// Returns an error message, or null when the key is acceptable.
function keyProblem(key) {
  if (typeof key !== "string") return "key must be a string";
  if (key === "") return "key must not be empty";
  if (key === "." || key === "..") return `key must not be '${key}'`;
  const n = byteLength(key);
  if (n > MAX_KEY_BYTES) {
    return `key is ${n} bytes, longer than the limit of ${MAX_KEY_BYTES}`;
  }
  return null;
}

function metadataProblem(metadata) {
  let s;
  try {
    s = JSON.stringify(metadata);
  } catch {
    return "metadata is not serialisable";
  }
  const n = byteLength(s ?? "");
  if (n > MAX_METADATA_BYTES) {
    return `metadata is ${n} bytes serialised, larger than the limit of ${MAX_METADATA_BYTES}`;
  }
  return null;
}

function decodeBase64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// Reads a JSON body; returns {value} or {error: Response}.
async function readJson(request, maxBytes = MAX_BULK_BODY_BYTES) {
  const text = await request.text();
  if (byteLength(text) > maxBytes) {
    return { error: htmlReply(413, "Request Entity Too Large", "The request body is larger than the API allows."), bytes: text.length };
  }
  try {
    return { value: JSON.parse(text), bytes: text.length };
  } catch {
    return { error: fail(400, E_BAD_REQUEST, "Could not parse request body: not valid JSON"), bytes: text.length };
  }
}

// Runs fn over items with at most `limit` calls in flight.  Every
// YIELD_EVERY items it waits on a timer: a workerd kept busy for more than
// about 5 s without ever going idle closes the client's keep-alive
// connection after the response, and these short pauses prevent that.
async function runLimited(items, limit, fn) {
  let next = 0;
  let sinceYield = 0;
  const workers = [];
  for (let w = 0; w < Math.min(limit, items.length); w++) {
    workers.push((async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i], i);
        if (++sinceYield >= YIELD_EVERY) {
          sinceYield = 0;
          await sleep(YIELD_MS);
        }
      }
    })());
  }
  await Promise.all(workers);
}

// The cursor the harness hands out for an injected empty page: it wraps the
// real cursor (possibly "") so the next request resumes at the same place.
const EMPTY_PAGE_CURSOR = "wfvault-harness:";

// ------------------------------------------------------------ API routes ---

function routeOf(method, rest) {
  // rest: path after the namespace prefix, e.g. "/bulk", "/values/k".
  if (rest === "/bulk") {
    if (method === "PUT") return "bulk_put";
    if (method === "DELETE") return "bulk_delete";
  } else if (rest === "/bulk/delete") {
    if (method === "POST") return "bulk_delete";
  } else if (rest === "/bulk/get") {
    if (method === "POST") return "bulk_get";
  } else if (rest === "/keys") {
    if (method === "GET") return "list";
  } else if (rest.startsWith("/values/")) {
    if (method === "GET") return "get";
    if (method === "PUT") return "value_put";
    if (method === "DELETE") return "value_delete";
  } else if (rest.startsWith("/metadata/")) {
    if (method === "GET") return "metadata";
  }
  return null;
}

// Parses /client/v4/...; returns {route, account, namespace, rest}.
function parseApiPath(method, path) {
  const m = /^\/client\/v4\/accounts\/([^/]+)\/storage\/kv\/namespaces(?:\/([^/]+)(\/.*)?)?$/.exec(path);
  if (m) {
    const [, account, namespace, rest] = m;
    if (namespace === undefined) {
      return { route: method === "GET" ? "namespaces" : "unknown", account };
    }
    if (rest === undefined || rest === "") {
      return { route: method === "GET" ? "namespaces" : "unknown", account, namespace };
    }
    return { route: routeOf(method, rest) ?? "unknown", account, namespace, rest };
  }
  const secrets = parseSecretsPath(method, path);
  if (secrets) return secrets;
  if (path === "/client/v4/user/tokens/verify" && method === "GET") {
    return { route: "verify_token" };
  }
  const a = /^\/client\/v4\/accounts\/([^/]+)\/tokens\/verify$/.exec(path);
  if (a && method === "GET") return { route: "account_verify_token", account: a[1] };
  return { route: "unknown" };
}

function keyFromRest(rest, prefix) {
  const raw = rest.slice(prefix.length);
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}

async function bulkPut(request, env, fault, info) {
  const body = await readJson(request);
  info.bytes = body.bytes;
  if (body.error) return body.error;
  const items = body.value;
  if (!Array.isArray(items)) {
    return fail(400, E_BAD_REQUEST, "request body must be a JSON array of key-value pairs");
  }
  info.items = items.length;
  if (items.length > MAX_BULK_ITEMS) {
    return fail(400, E_BAD_REQUEST, `too many key-value pairs: ${items.length} > ${MAX_BULK_ITEMS}`);
  }
  const now = Math.floor(Date.now() / 1000);
  const writes = [];
  for (let i = 0; i < items.length; i++) {
    const it = items[i];
    const where = `item ${i}`;
    if (it === null || typeof it !== "object" || Array.isArray(it)) {
      return fail(400, E_BAD_REQUEST, `${where}: must be an object`);
    }
    const kp = keyProblem(it.key);
    if (kp) return fail(400, E_BAD_REQUEST, `${where}: ${kp}`);
    if (typeof it.value !== "string") {
      return fail(400, E_BAD_REQUEST, `${where} (${it.key}): value must be a string`);
    }
    if (it.base64 !== undefined && typeof it.base64 !== "boolean") {
      return fail(400, E_BAD_REQUEST, `${where} (${it.key}): base64 must be a boolean`);
    }
    let value = it.value;
    if (it.base64) {
      try {
        value = decodeBase64(it.value);
      } catch {
        return fail(400, E_BAD_REQUEST, `${where} (${it.key}): value is not valid base64`);
      }
    }
    const vlen = typeof value === "string" ? byteLength(value) : value.length;
    if (vlen > MAX_VALUE_BYTES) {
      return fail(413, E_BAD_REQUEST, `${where} (${it.key}): value is larger than ${MAX_VALUE_BYTES} bytes`);
    }
    const opts = {};
    if (it.metadata !== undefined && it.metadata !== null) {
      const mp = metadataProblem(it.metadata);
      if (mp) return fail(400, E_BAD_REQUEST, `${where} (${it.key}): ${mp}`);
      opts.metadata = it.metadata;
    }
    if (it.expiration !== undefined && it.expiration !== null) {
      const e = Number(it.expiration);
      if (!Number.isInteger(e) || e < now + MIN_EXPIRATION_TTL) {
        return fail(400, E_BAD_REQUEST, `${where} (${it.key}): expiration must be a unix time at least ${MIN_EXPIRATION_TTL} s in the future`);
      }
      opts.expiration = e;
    }
    if (it.expiration_ttl !== undefined && it.expiration_ttl !== null) {
      const t = Number(it.expiration_ttl);
      if (!Number.isInteger(t) || t < MIN_EXPIRATION_TTL) {
        return fail(400, E_BAD_REQUEST, `${where} (${it.key}): expiration_ttl must be an integer >= ${MIN_EXPIRATION_TTL}`);
      }
      opts.expirationTtl = t;
    }
    writes.push({ key: it.key, value, opts });
  }
  const skip = partialSkip(fault, writes.map((w) => w.key));
  await runLimited(writes, WRITE_CONCURRENCY, async (w) => {
    if (skip.has(w.key)) return;
    await env.TENANT_CONFIGS.put(w.key, w.value, w.opts);
  });
  const unsuccessful = writes.map((w) => w.key).filter((k) => skip.has(k));
  return ok({
    successful_key_count: writes.length - unsuccessful.length,
    unsuccessful_keys: [...new Set(unsuccessful)],
  });
}

// For a "partial" fault: the set of keys not to act on.
function partialSkip(fault, keys) {
  if (!fault || fault.kind !== "partial") return new Set();
  if (Array.isArray(fault.keys)) return new Set(fault.keys.filter((k) => keys.includes(k)));
  const count = Number.isInteger(fault.count) ? fault.count : 1;
  return new Set(keys.slice(0, count));
}

async function bulkDelete(request, env, fault, info) {
  const body = await readJson(request);
  info.bytes = body.bytes;
  if (body.error) return body.error;
  const keys = body.value;
  if (!Array.isArray(keys)) {
    return fail(400, E_BAD_REQUEST, "request body must be a JSON array of key names");
  }
  info.items = keys.length;
  if (keys.length > MAX_BULK_ITEMS) {
    return fail(400, E_BAD_REQUEST, `too many keys: ${keys.length} > ${MAX_BULK_ITEMS}`);
  }
  for (let i = 0; i < keys.length; i++) {
    const kp = keyProblem(keys[i]);
    if (kp) return fail(400, E_BAD_REQUEST, `item ${i}: ${kp}`);
  }
  const skip = partialSkip(fault, keys);
  await runLimited(keys, WRITE_CONCURRENCY, async (k) => {
    if (skip.has(k)) return;
    await env.TENANT_CONFIGS.delete(k);
  });
  const unsuccessful = [...new Set(keys.filter((k) => skip.has(k)))];
  return ok({
    successful_key_count: keys.length - keys.filter((k) => skip.has(k)).length,
    unsuccessful_keys: unsuccessful,
  });
}

async function bulkGet(request, env, info) {
  const body = await readJson(request);
  info.bytes = body.bytes;
  if (body.error) return body.error;
  const b = body.value;
  if (!b || typeof b !== "object" || !Array.isArray(b.keys)) {
    return fail(400, E_BAD_REQUEST, "request body must be an object with a 'keys' array");
  }
  info.items = b.keys.length;
  if (b.keys.length > MAX_BULK_GET_KEYS) {
    return fail(400, E_BAD_REQUEST, `too many keys: ${b.keys.length} > ${MAX_BULK_GET_KEYS}`);
  }
  const type = b.type ?? "text";
  if (type !== "text" && type !== "json") {
    return fail(400, E_BAD_REQUEST, "type must be 'text' or 'json'");
  }
  for (let i = 0; i < b.keys.length; i++) {
    const kp = keyProblem(b.keys[i]);
    if (kp) return fail(400, E_BAD_REQUEST, `key ${i}: ${kp}`);
  }
  const values = {};
  for (const k of b.keys) {
    const r = await env.TENANT_CONFIGS.getWithMetadata(k, "text");
    if (r.value === null) {
      values[k] = null;
      continue;
    }
    let v = r.value;
    if (type === "json") {
      try {
        v = JSON.parse(v);
      } catch {
        return fail(400, E_BAD_REQUEST, `value of ${k} is not valid JSON`);
      }
    }
    values[k] = b.withMetadata ? { value: v, metadata: r.metadata ?? null } : v;
  }
  return ok({ values });
}

async function listKeys(url, env, fault, info) {
  const params = url.searchParams;
  let limit = LIST_LIMIT_MAX;
  if (params.has("limit") && params.get("limit") !== "") {
    limit = Number(params.get("limit"));
    if (!Number.isInteger(limit) || limit < LIST_LIMIT_MIN || limit > LIST_LIMIT_MAX) {
      return fail(400, E_BAD_REQUEST, `limit must be an integer between ${LIST_LIMIT_MIN} and ${LIST_LIMIT_MAX}`);
    }
  }
  const prefix = params.get("prefix") ?? "";
  let cursor = params.get("cursor") ?? "";
  if (cursor.startsWith(EMPTY_PAGE_CURSOR)) cursor = cursor.slice(EMPTY_PAGE_CURSOR.length);
  if (fault && fault.kind === "empty_page") {
    info.items = 0;
    return ok([], { result_info: { count: 0, cursor: EMPTY_PAGE_CURSOR + cursor } });
  }
  // A broken API: cursors that come round again, or never end.
  if (fault && fault.kind === "cursor_cycle") {
    const next = fault.cursors[fault.used++ % fault.cursors.length];
    info.items = 0;
    return ok([], { result_info: { count: 0, cursor: next } });
  }
  if (fault && fault.kind === "endless_pages") {
    info.items = 0;
    return ok([], { result_info: { count: 0, cursor: `wfvault-endless:${++fault.used}` } });
  }
  const opts = { limit };
  if (prefix !== "") opts.prefix = prefix;
  if (cursor !== "") opts.cursor = cursor;
  let page;
  try {
    page = await env.TENANT_CONFIGS.list(opts);
  } catch (e) {
    return fail(400, E_BAD_REQUEST, `list: ${e.message}`);
  }
  const result = page.keys.map((k) => {
    const o = { name: k.name };
    if (k.expiration !== undefined) o.expiration = k.expiration;
    if (k.metadata !== undefined) o.metadata = k.metadata;
    return o;
  });
  info.items = result.length;
  const next = page.list_complete ? "" : (page.cursor ?? "");
  return ok(result, { result_info: { count: result.length, cursor: next } });
}

async function getValue(key, env) {
  const v = await env.TENANT_CONFIGS.get(key, "arrayBuffer");
  if (v === null) return fail(404, E_KEY_NOT_FOUND, "get: 'key not found'");
  return new Response(v, {
    status: 200,
    headers: { "content-type": "application/octet-stream" },
  });
}

async function getMetadata(key, env) {
  const r = await env.TENANT_CONFIGS.getWithMetadata(key, "stream");
  if (r.value === null) return fail(404, E_KEY_NOT_FOUND, "metadata: 'key not found'");
  await r.value.cancel();
  return ok(r.metadata ?? null);
}

async function putValue(request, url, key, env, info) {
  const opts = {};
  const p = url.searchParams;
  if (p.has("expiration")) opts.expiration = Number(p.get("expiration"));
  if (p.has("expiration_ttl")) opts.expirationTtl = Number(p.get("expiration_ttl"));
  let value;
  const ctype = request.headers.get("content-type") ?? "";
  if (ctype.startsWith("multipart/form-data")) {
    const form = await request.formData();
    const v = form.get("value");
    if (v === null) return fail(400, E_BAD_REQUEST, "multipart body needs a 'value' part");
    value = typeof v === "string" ? v : await v.arrayBuffer();
    const m = form.get("metadata");
    if (m !== null) {
      try {
        opts.metadata = JSON.parse(typeof m === "string" ? m : await m.text());
      } catch {
        return fail(400, E_BAD_REQUEST, "metadata part is not valid JSON");
      }
      const mp = metadataProblem(opts.metadata);
      if (mp) return fail(400, E_BAD_REQUEST, mp);
    }
  } else {
    value = await request.arrayBuffer();
  }
  info.bytes = typeof value === "string" ? byteLength(value) : value.byteLength;
  try {
    await env.TENANT_CONFIGS.put(key, value, opts);
  } catch (e) {
    return fail(400, E_BAD_REQUEST, `put: ${e.message}`);
  }
  return ok({});
}

async function handleApi(request, url, env) {
  const path = url.pathname;
  const method = request.method;
  const parsed = parseApiPath(method, path);
  const route = parsed.route;
  state.counts[route] = (state.counts[route] ?? 0) + 1;
  state.total++;
  const info = { seq: ++state.seq, at: Date.now(), route, method, path, status: 0, fault: null };
  if (url.search) info.query = url.search;
  state.log.push(info);
  if (state.log.length > REQUEST_LOG_MAX) state.log.shift();

  // Counted until answered.  A request whose client went away stays
  // counted until a reset: workerd (behind Miniflare's entry Worker) does
  // not tell the handler, it just never resumes it.
  const flight = {};
  const inFlight = state.inFlight;
  inFlight.add(flight);
  try {
    return await answerApi(request, url, env, parsed, info);
  } finally {
    inFlight.delete(flight);
  }
}

async function answerApi(request, url, env, parsed, info) {
  let response = await handleApiInner(request, url, env, parsed, info);
  // slow_reply: the request is carried out, the answer comes late (a
  // large bulk write being applied).
  if (info.reply_delay_ms > 0) await sleep(info.reply_delay_ms);
  // ratelimit: Cloudflare's Ratelimit header says the allowance is used up.
  if (info.ratelimit_reset !== undefined) {
    response = new Response(response.body, response);
    response.headers.set("ratelimit", `"default";r=0;t=${info.ratelimit_reset}`);
    response.headers.set("ratelimit-policy", `"default";q=1200;w=300`);
  }
  info.status = response.status;
  return response;
}

async function handleApiInner(request, url, env, parsed, info, noFaults = false) {
  const route = parsed.route;
  let fault = null;
  if (route !== "unknown" && !noFaults) {
    fault = takeFault(route, parsed);
    if (fault) {
      state.faulted++;
      info.fault = fault.kind;
      const early = await applyFault(fault, request, url, env, parsed, info);
      if (early) return early;
    }
  }

  const who = tokenOf(request, env);
  if (who instanceof Response) return who;
  // Each token verifies only where Cloudflare verifies its kind.
  if (route === "verify_token") {
    if (who === "user" || who === "readonly") return verified();
    return fail(401, E_INVALID_TOKEN, "Invalid API Token");
  }
  if (route === "account_verify_token") {
    if (who === "account" && parsed.account === env.ACCOUNT_ID) return verified();
    return fail(401, E_INVALID_TOKEN, "Invalid API Token");
  }
  if (who === null) {
    return fail(401, E_AUTH, "Authentication error");
  }
  if (route === "unknown") {
    return fail(404, E_NO_ROUTE, `No route for ${request.method} ${url.pathname}`);
  }
  if (SECRET_ROUTES.includes(route)) {
    if (parsed.account !== env.ACCOUNT_ID) {
      return fail(404, E_NO_ROUTE, `Could not route to ${url.pathname}, perhaps your object identifier is invalid?`);
    }
    // As Cloudflare: a token without "Workers Scripts: Edit" may list
    // the secrets but not change them.
    if (who === "readonly" && SECRET_WRITE_ROUTES.has(route)) {
      return fail(403, E_AUTH, "Authentication error");
    }
    return handleSecrets(request, env, parsed, info, { ok, fail });
  }
  if (parsed.account !== env.ACCOUNT_ID) {
    return failMany(400, [
      { code: E_NO_ROUTE, message: `Could not route to ${url.pathname}, perhaps your object identifier is invalid?` },
      { code: E_NO_ROUTE_URI, message: "No route for that URI" },
    ]);
  }
  if (who === "readonly" && WRITE_ROUTES.has(route)) {
    return fail(403, E_AUTH, "Authentication error");
  }
  if (route === "namespaces" && parsed.namespace === undefined) {
    return ok([{ id: env.NAMESPACE_ID, title: "TENANT_CONFIGS", supports_url_encoding: true },
      { id: env.NAMESPACE_ID_2, title: "TENANT_CONFIGS_2", supports_url_encoding: true }],
      { result_info: { page: 1, per_page: 20, count: 2, total_count: 2, total_pages: 1 } });
  }
  // Two namespaces (two targets, e.g. staging and production): the
  // handlers below use env.TENANT_CONFIGS, so it names the one asked for.
  const kv = kvNamespace(env, parsed.namespace);
  if (kv === null) {
    return fail(404, E_NAMESPACE_NOT_FOUND, `${route}: 'namespace not found'`);
  }
  if (kv !== env.TENANT_CONFIGS) env = { ...env, TENANT_CONFIGS: kv };

  switch (route) {
    case "namespaces":
      return ok({ id: parsed.namespace, supports_url_encoding: true,
        title: parsed.namespace === env.NAMESPACE_ID_2 ? "TENANT_CONFIGS_2" : "TENANT_CONFIGS" });
    case "bulk_put":
      return bulkPut(request, env, fault, info);
    case "bulk_delete":
      return bulkDelete(request, env, fault, info);
    case "bulk_get":
      return bulkGet(request, env, info);
    case "list":
      return listKeys(url, env, fault, info);
    case "get":
    case "value_put":
    case "value_delete":
    case "metadata": {
      const pfx = route === "metadata" ? "/metadata/" : "/values/";
      const key = keyFromRest(parsed.rest, pfx);
      if (key === null) return fail(400, E_BAD_REQUEST, "key is not valid percent-encoding");
      const kp = keyProblem(key);
      if (kp) return fail(400, E_BAD_REQUEST, kp);
      info.key = key;
      if (route === "get") return getValue(key, env);
      if (route === "metadata") return getMetadata(key, env);
      if (route === "value_put") return putValue(request, url, key, env, info);
      await env.TENANT_CONFIGS.delete(key);
      return ok({});
    }
  }
  return fail(405, E_METHOD, "method not allowed");
}

// The KV binding of namespace id ns, or null.
function kvNamespace(env, ns) {
  if (ns === env.NAMESPACE_ID) return env.TENANT_CONFIGS;
  if (env.NAMESPACE_ID_2 && ns === env.NAMESPACE_ID_2) return env.TENANT_CONFIGS_2;
  return null;
}

// --------------------------------------------------------------- faults ---

// The first queued fault whose route matches (or is "any"), and whose
// namespace or script, when it names one, is the one in the request's path
// (so it hits one target of several), is used; its "times" is decremented
// and it leaves the queue at 0.
function takeFault(route, parsed) {
  const i = state.faults.findIndex((f) => {
    if (f.route !== route && f.route !== "any") return false;
    if (f.namespace !== undefined && parsed.namespace !== f.namespace) return false;
    if (f.script !== undefined && parsed.script !== f.script) return false;
    if (f.kind === "partial") return route === "bulk_put" || route === "bulk_delete";
    if (LIST_FAULTS.has(f.kind)) return route === "list";
    return true;
  });
  if (i < 0) return null;
  const f = state.faults[i];
  f.times--;
  if (f.times <= 0) state.faults.splice(i, 1);
  return f;
}

// Returns a Response to send instead of the real answer, or null to go on
// (slow, partial, empty_page).
async function applyFault(fault, request, url, env, parsed, info) {
  const kind = fault.kind;
  if (kind === "slow_reply") {
    info.reply_delay_ms = fault.delay_ms;
    return null;
  }
  if (kind === "ratelimit") {
    info.ratelimit_reset = fault.reset;
    return null;
  }
  if (fault.delay_ms > 0) await sleep(fault.delay_ms);
  if (kind === "slow" || kind === "partial" || LIST_FAULTS.has(kind)) return null;
  if (fault.apply) {
    // Carry the request out first, then answer with the error (e.g. a 524
    // after the origin already stored the keys).
    await handleApiInner(request, url, env, parsed, { ...info }, true);
  } else if (request.body) {
    await request.arrayBuffer();
  }
  const msg = fault.message;
  switch (kind) {
    case "429": {
      const headers = {};
      if (fault.retry_after !== undefined && fault.retry_after !== null) {
        headers["retry-after"] = String(fault.retry_after);
      }
      return fail(429, E_RATE_LIMITED, msg ?? "Please wait and consider throttling your request speed", headers);
    }
    case "500":
      return fail(500, E_INTERNAL, msg ?? "Internal server error");
    case "502":
      return htmlReply(502, "Bad gateway", msg ?? "The web server reported a bad gateway error.");
    case "503":
      return htmlReply(503, "Service temporarily unavailable", msg ?? "The server is temporarily unable to service your request.");
    case "524":
      return htmlReply(524, "A timeout occurred", msg ?? "The origin web server timed out responding to this request.");
    case "413":
      return htmlReply(413, "Request Entity Too Large", msg ?? "The request body is larger than the API allows.");
    case "400":
      return fail(400, E_BAD_REQUEST, msg ?? "Bad request (injected)");
    case "401":
      return fail(401, E_AUTH, msg ?? "Authentication error");
    case "403":
      return fail(403, E_AUTH, msg ?? "Authentication error");
    case "cf_error": {
      const e = { code: fault.code, message: msg ?? `injected error ${fault.code}` };
      if (fault.chain !== undefined) e.error_chain = [{ code: fault.chain, message: `injected error ${fault.chain}` }];
      return failMany(fault.status, [e]);
    }
    case "challenge":
      return htmlReply(403, "Just a moment...", "Checking if the site connection is secure.",
        { "cf-mitigated": "challenge" });
  }
  return fail(500, E_INTERNAL, `unknown fault kind ${kind}`);
}

function normaliseFault(f, i) {
  if (f === null || typeof f !== "object" || Array.isArray(f)) {
    throw new Error(`fault ${i}: must be an object`);
  }
  const kind = String(f.kind ?? "");
  if (!FAULT_KINDS.has(kind)) {
    throw new Error(`fault ${i}: unknown kind '${kind}' (one of ${[...FAULT_KINDS].join(", ")})`);
  }
  const route = f.route ?? "any";
  if (!FAULT_ROUTES.has(route)) {
    throw new Error(`fault ${i}: unknown route '${route}' (one of ${[...FAULT_ROUTES].join(", ")})`);
  }
  const times = f.times ?? 1;
  if (!Number.isInteger(times) || times < 1) throw new Error(`fault ${i}: times must be an integer >= 1`);
  const out = { route, kind, times };
  if (f.retry_after !== undefined && f.retry_after !== null) out.retry_after = String(f.retry_after);
  if (f.delay_ms !== undefined) {
    if (!Number.isFinite(f.delay_ms) || f.delay_ms < 0 || f.delay_ms > MAX_DELAY_MS) {
      throw new Error(`fault ${i}: delay_ms must be a number between 0 and ${MAX_DELAY_MS}`);
    }
    out.delay_ms = f.delay_ms;
  }
  if ((kind === "slow" || kind === "slow_reply") && out.delay_ms === undefined) out.delay_ms = 1000;
  if (kind === "ratelimit") {
    const reset = f.reset ?? 1;
    if (!Number.isInteger(reset) || reset < 0 || reset > 300) {
      throw new Error(`fault ${i}: reset must be an integer between 0 and 300`);
    }
    out.reset = reset;
  }
  if (f.keys !== undefined) {
    if (!Array.isArray(f.keys) || !f.keys.every((k) => typeof k === "string")) {
      throw new Error(`fault ${i}: keys must be an array of strings`);
    }
    out.keys = f.keys;
  }
  if (f.count !== undefined) {
    if (!Number.isInteger(f.count) || f.count < 0) throw new Error(`fault ${i}: count must be an integer >= 0`);
    out.count = f.count;
  }
  if (kind === "cursor_cycle") {
    const cursors = f.cursors ?? ["wfvault-cycle:A", "wfvault-cycle:B"];
    if (!Array.isArray(cursors) || cursors.length === 0 ||
        !cursors.every((c) => typeof c === "string" && c !== "")) {
      throw new Error(`fault ${i}: cursors must be an array of non-empty strings`);
    }
    out.cursors = cursors;
  }
  if (kind === "cursor_cycle" || kind === "endless_pages") out.used = 0;
  if (kind === "cf_error") {
    if (!Number.isInteger(f.status) || f.status < 400 || f.status > 599) {
      throw new Error(`fault ${i}: cf_error needs status, an integer 400-599`);
    }
    if (!Number.isInteger(f.code) || f.code < 1) throw new Error(`fault ${i}: cf_error needs code, a positive integer`);
    if (f.chain !== undefined && (!Number.isInteger(f.chain) || f.chain < 1)) {
      throw new Error(`fault ${i}: chain must be a positive integer`);
    }
    out.status = f.status;
    out.code = f.code;
    if (f.chain !== undefined) out.chain = f.chain;
  }
  for (const scope of ["namespace", "script"]) {
    if (f[scope] === undefined) continue;
    if (typeof f[scope] !== "string" || f[scope] === "") {
      throw new Error(`fault ${i}: ${scope} must be a non-empty string`);
    }
    out[scope] = f[scope];
  }
  if (f.apply !== undefined) out.apply = Boolean(f.apply);
  if (f.message !== undefined) out.message = String(f.message);
  return out;
}

// ------------------------------------------------------------- harness ---

async function clearAllData(env) {
  let cursor;
  let n = 0;
  for (;;) {
    const page = await env.TENANT_CONFIGS.list(cursor ? { cursor } : {});
    await runLimited(page.keys, WRITE_CONCURRENCY, async (k) => {
      await env.TENANT_CONFIGS.delete(k.name);
    });
    n += page.keys.length;
    if (page.list_complete) break;
    cursor = page.cursor;
  }
  return n;
}

async function handleHarness(request, url, env) {
  const path = url.pathname;
  const method = request.method;
  if (path === "/__harness/stats" && method === "GET") {
    return jsonReply({
      requests: { ...state.counts },
      total: state.total,
      faulted: state.faulted,
      faults_pending: state.faults.length,
      in_flight: state.inFlight.size,
    });
  }
  if (path === "/__harness/requests" && method === "GET") {
    return jsonReply({ requests: state.log });
  }
  if (path === "/__harness/reset" && method === "POST") {
    resetCounters();
    state.faults = [];
    let deleted = 0;
    const data = url.searchParams.get("data");
    let secrets = 0;
    if (data === "1" || data === "true") {
      deleted = await clearAllData(env);
      if (env.TENANT_CONFIGS_2) {
        deleted += await clearAllData({ TENANT_CONFIGS: env.TENANT_CONFIGS_2 });
      }
      secrets = clearSecrets(env);
    }
    return jsonReply({ ok: true, deleted_keys: deleted, deleted_secrets: secrets });
  }
  if (path === "/__harness/faults") {
    if (method === "GET") return jsonReply({ faults: state.faults });
    if (method === "DELETE") {
      state.faults = [];
      return jsonReply({ ok: true, faults: [] });
    }
    if (method === "POST") {
      let body;
      try {
        body = JSON.parse(await request.text());
      } catch {
        return jsonReply({ ok: false, error: "body must be JSON" }, 400);
      }
      const list = Array.isArray(body) ? body : [body];
      let added;
      try {
        added = list.map(normaliseFault);
      } catch (e) {
        return jsonReply({ ok: false, error: e.message }, 400);
      }
      if (url.searchParams.get("replace") === "1") state.faults = [];
      state.faults.push(...added);
      return jsonReply({ ok: true, faults: state.faults });
    }
  }
  if (path === "/__harness/secrets" && method === "GET") {
    return jsonReply({ scripts: secretNames(env) });
  }
  if (path === "/__harness/health" && method === "GET") {
    return jsonReply({ ok: true, account: env.ACCOUNT_ID, namespace: env.NAMESPACE_ID });
  }
  return jsonReply({ ok: false, error: `no harness route ${method} ${path}` }, 404);
}

// ------------------------------------------------------ consumer route ---

// GET /tenant/{tenantId}[/{field}][?prefix=P][&namespace=ID]: what a
// production Worker does with the configs the sync agent pushed (bound to
// the namespace ID, by default the first).
async function handleTenant(request, url, env) {
  state.counts.tenant++;
  if (request.method !== "GET") {
    return jsonReply({ error: "method not allowed" }, 405);
  }
  const parts = url.pathname.split("/").slice(2);
  if (parts.length < 1 || parts.length > 2 || parts[0] === "") {
    return jsonReply({ error: "use /tenant/{tenantId} or /tenant/{tenantId}/{field}" }, 404);
  }
  let tenantId;
  let field;
  try {
    tenantId = decodeURIComponent(parts[0]);
    field = parts.length === 2 ? decodeURIComponent(parts[1]) : undefined;
  } catch {
    return jsonReply({ error: "bad percent-encoding" }, 400);
  }
  const prefix = url.searchParams.get("prefix") ?? "";
  const ns = url.searchParams.get("namespace");
  if (ns !== null) {
    const kv = kvNamespace(env, ns);
    if (kv === null) return jsonReply({ error: `no namespace ${ns}` }, 404);
    env = { ...env, TENANT_CONFIGS: kv };
  }

  if (prefix === "") {
    // The pattern the product promises, verbatim:
    const tenantConfig = await env.TENANT_CONFIGS.get(tenantId, 'json');
    return tenantReply(tenantId, field, tenantConfig);
  }
  // With a kv_key_prefix the KV key is prefix + tenant id.
  const tenantConfig = await env.TENANT_CONFIGS.get(prefix + tenantId, 'json');
  return tenantReply(tenantId, field, tenantConfig);
}

function tenantReply(tenantId, field, tenantConfig) {
  if (field === undefined) {
    return jsonReply({ tenant: tenantId, config: tenantConfig });
  }
  let value = null;
  if (tenantConfig !== null && typeof tenantConfig === "object") {
    value = field === "openai_api_key"
      ? tenantConfig.openai_api_key
      : tenantConfig[field];
    if (value === undefined) value = null;
  }
  return jsonReply({ tenant: tenantId, field, value });
}

// ----------------------------------------------------------------- main ---

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const path = url.pathname;
    try {
      if (path === "/client/v4" || path.startsWith("/client/v4/")) {
        return await handleApi(request, url, env);
      }
      if (path.startsWith("/__harness/")) {
        return await handleHarness(request, url, env);
      }
      if (path.startsWith("/tenant/")) {
        return await handleTenant(request, url, env);
      }
      if (path.startsWith("/worker/")) {
        state.counts.consumer++;
        return await handleConsumer(request, url, env, jsonReply);
      }
      return jsonReply({ error: `no route ${request.method} ${path}` }, 404);
    } catch (e) {
      return fail(500, E_INTERNAL, `harness error: ${e && e.stack ? e.stack : e}`);
    }
  },
};
