// wfvault-config.js: a Cloudflare Worker reads a tenant's config from
// Workers KV, opening the values wfvault-sync sealed (AES-256-GCM).
// An ES module with no dependency: WebCrypto only.  Copy it next to the
// Worker's code and:
//
//   import { getTenantConfig } from "./wfvault-config.js";
//   const tenantConfig = await getTenantConfig(env, tenantId);
//
// It returns what `await env.TENANT_CONFIGS.get(tenantId, "json")` returns
// for an unsealed value (null when the key is missing).  The keys are
// Worker secrets: WFVAULT_SEAL_KEY and, during a rotation,
// WFVAULT_SEAL_KEY_PREVIOUS (the base64 line wfvault-sync --gen-seal-key
// wrote); a value names the key that sealed it by its key id.  A value
// that does not open throws a WfvaultConfigError; so does an unsealed one
// unless {allowPlaintext: true}.  Messages never hold a key or a config.

const AD_PREFIX = "wfvault-sealed-v1\n";
const KID_CONTEXT = "wfvault-seal-key-id";
const KEY_VARS = ["WFVAULT_SEAL_KEY", "WFVAULT_SEAL_KEY_PREVIOUS"];

export class WfvaultConfigError extends Error {
  constructor(message) {
    super(message);
    this.name = "WfvaultConfigError";
  }
}

const encoder = new TextEncoder();

// Strict base64 (with padding), or null.
function fromBase64(s) {
  if (typeof s !== "string" || s.length % 4 !== 0 ||
      !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) {
    return null;
  }
  let bin;
  try {
    bin = atob(s);
  } catch {
    return null;
  }
  const b = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) b[i] = bin.charCodeAt(i);
  return b;
}

function toHex(buf) {
  return Array.from(new Uint8Array(buf), (x) => x.toString(16).padStart(2, "0")).join("");
}

// The imported keys of this isolate, by the secret's text: importing once
// per isolate, not per request.
const keyCache = new Map();

async function importKey(name, text, where, kid) {
  let k = keyCache.get(text);
  if (k !== undefined) return k;
  // wrangler secret put keeps what stdin gave, newline included.
  const raw = fromBase64(text.trim());
  if (raw === null || raw.length !== 32) {
    throw new WfvaultConfigError(`the value of ${where} is sealed under key id ${kid}, but ${name} is not the base64 of a 32-byte key (wfvault-sync --gen-seal-key writes one)`);
  }
  const digest = await crypto.subtle.digest("SHA-256",
    new Uint8Array([...encoder.encode(KID_CONTEXT), ...raw]));
  const key = await crypto.subtle.importKey("raw", raw, { name: "AES-GCM" }, false, ["decrypt"]);
  raw.fill(0);
  k = { kid: toHex(digest).slice(0, 16), key };
  keyCache.set(text, k);
  return k;
}

// The key among env's whose id is kid, or a thrown error naming where
// (the KV key) and kid: the message alone says which value and which key.
async function findKey(env, kid, where) {
  let any = false;
  for (const name of KEY_VARS) {
    const text = env[name];
    if (text === undefined || text === null || text === "") continue;
    if (typeof text !== "string") {
      throw new WfvaultConfigError(`the value of ${where} is sealed under key id ${kid}, but ${name} is not a string (it must be a Worker secret)`);
    }
    any = true;
    const k = await importKey(name, text, where, kid);
    if (k.kid === kid) return k.key;
  }
  if (!any) {
    throw new WfvaultConfigError(`the value of ${where} is sealed under key id ${kid}, but the Worker has no WFVAULT_SEAL_KEY secret`);
  }
  throw new WfvaultConfigError(`the value of ${where} is sealed under key id ${kid}, which is neither WFVAULT_SEAL_KEY's nor WFVAULT_SEAL_KEY_PREVIOUS's`);
}

function isSealedShape(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v) &&
    Object.prototype.hasOwnProperty.call(v, "wfvault_sealed");
}

/**
 * The config of tenantId: what env[binding].get(prefix + tenantId, "json")
 * returns for an unsealed value, or null when the key is missing.
 * options: binding (default "TENANT_CONFIGS"), prefix (default ""),
 * allowPlaintext (default false: an unsealed value throws).
 */
export async function getTenantConfig(env, tenantId, options = {}) {
  const binding = options.binding ?? "TENANT_CONFIGS";
  const prefix = options.prefix ?? "";
  const allowPlaintext = options.allowPlaintext === true;

  if (typeof tenantId !== "string" || tenantId === "" || tenantId.includes("\n")) {
    throw new WfvaultConfigError("tenantId must be a non-empty string on one line");
  }
  if (typeof prefix !== "string") {
    throw new WfvaultConfigError("prefix must be a string");
  }
  const where = `KV key ${JSON.stringify(prefix + tenantId)}`;
  const kv = env?.[binding];
  if (!kv || typeof kv.get !== "function") {
    throw new WfvaultConfigError(`cannot read ${where}: the Worker has no KV binding named ${binding}`);
  }
  const text = await kv.get(prefix + tenantId, "text");
  if (text === null) return null;

  let value;
  try {
    value = JSON.parse(text);
  } catch {
    throw new WfvaultConfigError(`the value of ${where} is not JSON`);
  }
  if (!isSealedShape(value)) {
    if (allowPlaintext) return value;
    throw new WfvaultConfigError(`the value of ${where} is not sealed; refusing it (pass {allowPlaintext: true} only while moving to sealed values)`);
  }
  const { wfvault_sealed: format, kid, v, nonce, ct } = value;
  if (format !== 1) {
    throw new WfvaultConfigError(`the value of ${where} is sealed in format ${JSON.stringify(format)}, which this module does not know`);
  }
  if (typeof kid !== "string" || !/^[0-9a-f]{16}$/.test(kid) ||
      !Number.isSafeInteger(v) || v < 0) {
    throw new WfvaultConfigError(`the sealed value of ${where} is malformed`);
  }
  const iv = fromBase64(nonce);
  const data = fromBase64(ct);
  if (iv === null || iv.length !== 12 || data === null || data.length < 16) {
    throw new WfvaultConfigError(`the sealed value of ${where} (key id ${kid}) is malformed`);
  }
  const key = await findKey(env, kid, where);
  let plain;
  try {
    plain = await crypto.subtle.decrypt({
      name: "AES-GCM",
      iv,
      additionalData: encoder.encode(`${AD_PREFIX}${tenantId}\n${v}`),
      tagLength: 128,
    }, key, data);
  } catch {
    throw new WfvaultConfigError(`the sealed value of ${where} (key id ${kid}) does not open for tenant ${JSON.stringify(tenantId)}: it was altered or sealed for another tenant`);
  }
  const bytes = new Uint8Array(plain);
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new WfvaultConfigError(`the sealed value of ${where} (key id ${kid}) holds no JSON`);
  } finally {
    bytes.fill(0);
  }
}
