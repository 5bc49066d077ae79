#!/usr/bin/env node
// Tests of edge/wfvault-config.js on the Workers runtime (Miniflare): the
// known-answer vector shared with the agent (tests/unit/test_seal.c),
// values replayed under another tenant or version, wrong and previous
// keys, missing keys, plaintext.  Prints TAP; exits non-zero on failure.
import { startEdge } from "./edge.mjs";

// The shared vector: key bytes 0..31, nonce a0..ab, tenant "acme", v 7.
const KAT_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KAT_KID = "d2041b96f9199aea";
const KAT_CONFIG = { anthropic_api_key: "sk-ant-test-0001", openai_api_key: "sk-test-0001" };
const KAT_VALUE = JSON.stringify({
  ct: "nTodQzGjcNASDOSMZgqpgRvJIDKolTEHsW9I8lLfEHKmW3fPnxNxEX3zdK1nG+qmJmsvFwm1Y1x7fHg1iQTgw8CRtV8AlMadoiFHobIIAxzx4eRg74brng==",
  kid: KAT_KID,
  nonce: "oKGio6Slpqeoqaqr",
  v: 7,
  wfvault_sealed: 1,
});
// Another key (bytes 32..63), its base64.
const OTHER_KEY = Buffer.from([...Array(32).keys()].map((i) => i + 32)).toString("base64");

const tests = [];
const test = (name, fn) => tests.push({ name, fn });
function eq(a, e, msg) {
  if (JSON.stringify(a) !== JSON.stringify(e)) {
    throw new Error(`${msg}: expected ${JSON.stringify(e)}, got ${JSON.stringify(a)}`);
  }
}
function fails(r, re, msg) {
  if (r.ok !== false || r.name !== "WfvaultConfigError" || !re.test(r.error)) {
    throw new Error(`${msg}: expected an error matching ${re}, got ${JSON.stringify(r)}`);
  }
  // Never the key or the config in a message.
  for (const s of [KAT_KEY, OTHER_KEY, "sk-test-0001", "sk-ant-test-0001"]) {
    if (r.error.includes(s)) throw new Error(`${msg}: the message holds a secret`);
  }
}

let E;

test("the shared known-answer vector opens to exactly the config", async () => {
  await E.kv.put("acme", KAT_VALUE);
  eq(await E.read("keyed", "acme"), { ok: true, config: KAT_CONFIG }, "config");
  // The key with a trailing newline, as `wrangler secret put < FILE` keeps it.
  eq(await E.read("keyed_newline", "acme"), { ok: true, config: KAT_CONFIG }, "config");
});

test("a missing key reads as null", async () => {
  eq(await E.read("keyed", "nobody"), { ok: true, config: null }, "missing");
  eq(await E.read("nokey", "nobody"), { ok: true, config: null }, "missing without a key");
});

test("a value replayed under another tenant id does not open", async () => {
  await E.kv.put("globex", KAT_VALUE);
  fails(await E.read("keyed", "globex"), /does not open for tenant "globex"/, "replayed");
  await E.kv.put("acm", KAT_VALUE);
  fails(await E.read("keyed", "acm"), /does not open/, "a prefix of the tenant");
});

test("a value whose version was changed does not open", async () => {
  const v = JSON.parse(KAT_VALUE);
  v.v = 8;
  await E.kv.put("acme", JSON.stringify(v));
  fails(await E.read("keyed", "acme"), /does not open/, "version 8");
  await E.kv.put("acme", KAT_VALUE);
});

test("an altered ciphertext does not open", async () => {
  const v = JSON.parse(KAT_VALUE);
  const b = Buffer.from(v.ct, "base64");
  b[3] ^= 1;
  v.ct = b.toString("base64");
  await E.kv.put("tampered", JSON.stringify(v));
  fails(await E.read("keyed", "tampered"), /does not open/, "tampered");
});

test("the wrong key fails, even with the right key id forged", async () => {
  await E.kv.put("acme", KAT_VALUE);
  fails(await E.read("wrongkey", "acme"), new RegExp(`key id ${KAT_KID}, which is neither`), "wrong key");
  // A Worker whose key is OTHER_KEY, and a value claiming that key's id.
  const other = await E.read("wrongkey", "nobody");
  eq(other, { ok: true, config: null }, "sanity");
  const kid = await kidOf(OTHER_KEY);
  const v = JSON.parse(KAT_VALUE);
  v.kid = kid;
  await E.kv.put("forged", JSON.stringify(v));
  fails(await E.read("wrongkey", "forged"), /does not open/, "forged key id");
});

test("the previous key is accepted by its key id during a rotation", async () => {
  await E.kv.put("acme", KAT_VALUE);
  eq(await E.read("rotated", "acme"), { ok: true, config: KAT_CONFIG }, "previous key");
});

test("without a key a sealed value cannot be read", async () => {
  fails(await E.read("nokey", "acme"), /no WFVAULT_SEAL_KEY secret/, "no key");
});

test("a key that is not 32 bytes of base64 is an error", async () => {
  fails(await E.read("badkey", "acme"), /WFVAULT_SEAL_KEY is not the base64 of a 32-byte key/, "bad key");
});

test("plaintext is refused unless allowed, then read as get(..., 'json')", async () => {
  const text = JSON.stringify({ openai_api_key: "sk-test-0001" });
  await E.kv.put("plain", text);
  fails(await E.read("keyed", "plain"), /is not sealed; refusing it/, "refused");
  eq(await E.read("keyed", "plain", "?allow_plaintext=1"),
    { ok: true, config: await E.kv.get("plain", "json") }, "allowed");
  await E.kv.put("notjson", "{");
  fails(await E.read("keyed", "notjson", "?allow_plaintext=1"), /is not JSON/, "not JSON");
});

test("the prefix option reads prefix + tenant id; the AD holds the tenant id alone", async () => {
  await E.kv.put("tenant:acme", KAT_VALUE);
  eq(await E.read("keyed", "acme", "?prefix=tenant%3A"), { ok: true, config: KAT_CONFIG }, "prefixed");
  eq(await E.read("keyed", "acme", "?prefix=other%3A"), { ok: true, config: null }, "other prefix");
});

test("a malformed or unknown sealed value is an error", async () => {
  for (const [v, re] of [
    [{ wfvault_sealed: 2 }, /format 2/],
    [{ wfvault_sealed: 1, kid: "zz", v: 7, nonce: "", ct: "" }, /malformed/],
    [{ ...JSON.parse(KAT_VALUE), nonce: "AAAA" }, /malformed/],
    [{ ...JSON.parse(KAT_VALUE), v: -1 }, /malformed/],
  ]) {
    await E.kv.put("odd", JSON.stringify(v));
    fails(await E.read("keyed", "odd"), re, JSON.stringify(v));
  }
});

test("every message about a value names its KV key and the key id", async () => {
  await E.kv.put("tenant:acme", KAT_VALUE);
  const key = /KV key "tenant:acme"/;
  const kid = new RegExp(`key id ${KAT_KID}\\b`);
  for (const [worker, tenant, what] of [
    ["nokey", "acme", /no WFVAULT_SEAL_KEY secret/],
    ["wrongkey", "acme", /which is neither/],
    ["badkey", "acme", /WFVAULT_SEAL_KEY is not the base64/],
    ["keyed", "acme", null],
  ]) {
    const r = await E.read(worker, tenant, "?prefix=tenant%3A");
    if (what === null) {
      eq(r, { ok: true, config: KAT_CONFIG }, "sanity");
      continue;
    }
    fails(r, what, worker);
    fails(r, key, `${worker}: the KV key`);
    fails(r, kid, `${worker}: the key id`);
  }
  // A value that does not open, and one whose nonce is cut short.
  await E.kv.put("tenant:globex", KAT_VALUE);
  const r = await E.read("keyed", "globex", "?prefix=tenant%3A");
  fails(r, /does not open/, "replayed");
  fails(r, /KV key "tenant:globex"/, "replayed: the KV key");
  fails(r, kid, "replayed: the key id");
  await E.kv.put("tenant:odd", JSON.stringify({ ...JSON.parse(KAT_VALUE), nonce: "AAAA" }));
  const m = await E.read("keyed", "odd", "?prefix=tenant%3A");
  fails(m, /malformed/, "malformed");
  fails(m, /KV key "tenant:odd"/, "malformed: the KV key");
  fails(m, kid, "malformed: the key id");
});

async function kidOf(b64) {
  const { createHash } = await import("node:crypto");
  return createHash("sha256").update(Buffer.concat([Buffer.from("wfvault-seal-key-id"),
    Buffer.from(b64, "base64")])).digest("hex").slice(0, 16);
}

async function main() {
  const killer = setTimeout(() => {
    console.log("Bail out! test_edge exceeded 120 s");
    process.exit(1);
  }, 120000);
  console.log(`1..${tests.length}`);
  let failed = 0;
  try {
    E = await startEdge([
      { name: "keyed", bindings: { WFVAULT_SEAL_KEY: KAT_KEY } },
      { name: "keyed_newline", bindings: { WFVAULT_SEAL_KEY: `${KAT_KEY}\n` } },
      { name: "rotated", bindings: { WFVAULT_SEAL_KEY: OTHER_KEY, WFVAULT_SEAL_KEY_PREVIOUS: KAT_KEY } },
      { name: "wrongkey", bindings: { WFVAULT_SEAL_KEY: OTHER_KEY } },
      { name: "badkey", bindings: { WFVAULT_SEAL_KEY: "c2hvcnQ=" } },
      { name: "nokey", bindings: {} },
    ]);
  } catch (e) {
    console.log(`Bail out! Miniflare did not start: ${e}`);
    process.exit(1);
  }
  for (let i = 0; i < tests.length; i++) {
    try {
      await tests[i].fn();
      console.log(`ok ${i + 1} - ${tests[i].name}`);
    } catch (e) {
      failed++;
      console.log(`not ok ${i + 1} - ${tests[i].name}`);
      for (const line of String(e && e.stack ? e.stack : e).split("\n")) console.log(`# ${line}`);
    }
  }
  await E.dispose();
  clearTimeout(killer);
  process.exitCode = failed ? 1 : 0;
}

main();
