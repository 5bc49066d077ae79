// wfvault test stand-in: Cloudflare's Workers secrets API for a script, and
// a consumer Worker that reads those secrets from its environment.
//
//   PUT    /client/v4/accounts/{a}/workers/scripts/{s}/secrets        [secret_put]
//          body {"name":"OPENAI_API_KEY","text":"...","type":"secret_text"}
//   GET    /client/v4/accounts/{a}/workers/scripts/{s}/secrets        [secret_list]
//          result [{"name","type"}]: never a secret's text
//   GET    /client/v4/accounts/{a}/workers/scripts/{s}/secrets/{name} [secret_get]
//   DELETE /client/v4/accounts/{a}/workers/scripts/{s}/secrets/{name} [secret_delete]
//
// Error codes are Cloudflare's: 10007 (workers.api.error.script_not_found)
// for a script the account does not have, 10056 ("Binding 'X' not found.")
// for a secret the script does not have.
//
// The secrets live in this module's globals (one isolate, single threaded,
// like worker.js's state): they last as long as the harness.  The consumer
// Worker runs in a second Miniflare instance that harness.mjs (re)starts
// with the script's current secrets as its bindings, exactly as Cloudflare
// deploys a new version of the Worker when a secret changes; worker.js
// reaches it through the CONSUMER service binding.

export const SECRET_ROUTES = ["secret_put", "secret_list", "secret_get", "secret_delete"];

export const E_SCRIPT_NOT_FOUND = 10007;
export const E_BINDING_NOT_FOUND = 10056;

// Cloudflare: an environment variable or secret is at most 5 KiB; the count
// limit is this harness's choice (Cloudflare allows 64 on the free plan and
// 128 on paid ones).
const MAX_SECRET_BYTES = 5 * 1024;
const MAX_SECRETS = 128;
// A JavaScript variable name, as Cloudflare requires of a binding's name.
const NAME_RE = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

// script name -> Map(secret name -> text)
const scripts = new Map();

// Sets up the scripts the account holds from the SCRIPTS binding (a JSON
// array of names) the first time it is needed.
function scriptsOf(env) {
  if (scripts.size === 0) {
    let names = [];
    try {
      names = JSON.parse(env.SCRIPTS ?? "[]");
    } catch {
      names = [];
    }
    for (const s of names) scripts.set(s, new Map());
  }
  return scripts;
}

// The secret names of every script (never a text): for /__harness/secrets.
export function secretNames(env) {
  const out = {};
  for (const [s, m] of scriptsOf(env)) out[s] = [...m.keys()].sort();
  return out;
}

// Forgets every secret (POST /__harness/reset?data=1).
export function clearSecrets(env) {
  let n = 0;
  for (const m of scriptsOf(env).values()) {
    n += m.size;
    m.clear();
  }
  return n;
}

// Parses /client/v4/accounts/{a}/workers/scripts/{s}/secrets[/{name}];
// returns {route, account, script, name} or null for another path.
export function parseSecretsPath(method, path) {
  const m = /^\/client\/v4\/accounts\/([^/]+)\/workers\/scripts\/([^/]+)\/secrets(?:\/([^/]*))?$/.exec(path);
  if (!m) return null;
  const [, account, rawScript, rawName] = m;
  let script;
  let name;
  try {
    script = decodeURIComponent(rawScript);
    name = rawName === undefined ? undefined : decodeURIComponent(rawName);
  } catch {
    return { route: "unknown" };
  }
  let route = "unknown";
  if (name === undefined) {
    if (method === "PUT") route = "secret_put";
    else if (method === "GET") route = "secret_list";
  } else if (name !== "") {
    if (method === "GET") route = "secret_get";
    else if (method === "DELETE") route = "secret_delete";
  }
  return { route, account, script, name };
}

// Answers one secrets request after the token and account checks.
// reply(result) and fail(status, code, message) build the envelopes.
export async function handleSecrets(request, env, parsed, info, { ok, fail }) {
  const secrets = scriptsOf(env).get(parsed.script);
  if (secrets === undefined) {
    return fail(404, E_SCRIPT_NOT_FOUND, "workers.api.error.script_not_found");
  }
  switch (parsed.route) {
    case "secret_list":
      info.items = secrets.size;
      return ok([...secrets.keys()].sort().map((name) => ({ name, type: "secret_text" })));
    case "secret_get":
    case "secret_delete": {
      info.key = parsed.name;
      if (!secrets.has(parsed.name)) {
        return fail(404, E_BINDING_NOT_FOUND, `Binding '${parsed.name}' not found.`);
      }
      if (parsed.route === "secret_get") return ok({ name: parsed.name, type: "secret_text" });
      secrets.delete(parsed.name);
      return ok(null);
    }
    case "secret_put": {
      const text = await request.text();
      info.bytes = text.length;
      let b;
      try {
        b = JSON.parse(text);
      } catch {
        return fail(400, 10001, "Could not parse request body: not valid JSON");
      }
      if (b === null || typeof b !== "object" || Array.isArray(b)) {
        return fail(400, 10001, "request body must be a JSON object");
      }
      if (typeof b.name !== "string" || !NAME_RE.test(b.name)) {
        return fail(400, 10001, "name must be a JavaScript variable name");
      }
      info.key = b.name;
      if (b.type !== "secret_text") {
        return fail(400, 10001, "type must be 'secret_text'");
      }
      if (typeof b.text !== "string") {
        return fail(400, 10001, "text must be a string");
      }
      if (new TextEncoder().encode(b.text).length > MAX_SECRET_BYTES) {
        return fail(400, 10001, `text is larger than ${MAX_SECRET_BYTES} bytes`);
      }
      if (!secrets.has(b.name) && secrets.size >= MAX_SECRETS) {
        return fail(400, 10001, `a script holds at most ${MAX_SECRETS} secrets`);
      }
      secrets.set(b.name, b.text);
      return ok({ name: b.name, type: "secret_text" });
    }
  }
  return fail(405, 10405, "method not allowed");
}

// GET /worker/{script}/env/{NAME} (or /worker/{script}/openai): what the
// script's Worker reads from its environment.  The consumer runs with the
// script's current secrets as its env; it answers {"name","value"}.
export async function handleConsumer(request, url, env, jsonReply) {
  if (request.method !== "GET") return jsonReply({ error: "method not allowed" }, 405);
  const parts = url.pathname.split("/").slice(2);
  let script;
  try {
    script = decodeURIComponent(parts[0] ?? "");
  } catch {
    return jsonReply({ error: "bad percent-encoding" }, 400);
  }
  const rest = parts.slice(1).join("/");
  if (!/^(env\/[A-Za-z_$][A-Za-z0-9_$]*|env|openai)$/.test(rest)) {
    return jsonReply({ error: "use /worker/{script}/env/{NAME}, /worker/{script}/env or /worker/{script}/openai" }, 404);
  }
  const secrets = scriptsOf(env).get(script);
  if (secrets === undefined) return jsonReply({ error: `no script '${script}'` }, 404);
  // Hands the harness what Cloudflare would deploy: the script's secrets.
  return env.CONSUMER.fetch(`http://consumer/${rest}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ script, secrets: Object.fromEntries(secrets) }),
  });
}
