#!/usr/bin/env node
// Local Cloudflare Workers KV stand-in for wfvault's tests.
//
//   node tests/worker/harness.mjs [--port 0] [--token TOKEN]
//        [--account ACCOUNT_ID] [--namespace NAMESPACE_ID]
//        [--persist DIR] [--verbose]
//
// Starts Miniflare (the real workerd runtime) with worker.js and a KV
// namespace bound as TENANT_CONFIGS, listening on 127.0.0.1 only.  When ready
// it prints exactly one line to stdout:
//
//   READY http://127.0.0.1:PORT
//
// and then runs until SIGTERM or SIGINT (or until stdin reaches end of file
// when --exit-on-stdin-eof is given).  Nothing else is ever written to stdout;
// diagnostics go to stderr (runtime logs only with --verbose).

import { fileURLToPath } from "node:url";
import path from "node:path";
import fs from "node:fs";
import os from "node:os";
import { Miniflare, Log, LogLevel, NoOpLog } from "miniflare";

const HOST = "127.0.0.1";
const DEFAULTS = {
  port: 0,
  token: "test-token",
  accountToken: "test-account-token",
  readonlyToken: "test-readonly-token",
  account: "0123456789abcdef0123456789abcdef",
  namespace: "fedcba9876543210fedcba9876543210",
  namespace2: "00112233445566778899aabbccddeeff",
  persist: null,
  scripts: [],
  verbose: false,
  exitOnStdinEof: false,
};
// workerd accepts compatibility dates up to its own release date; this one
// is older than the pinned workerd.
const COMPATIBILITY_DATE = "2025-07-01";

const USAGE = `usage: node harness.mjs [--port N] [--token TOKEN] [--account ACCOUNT_ID]
                        [--account-token TOKEN] [--readonly-token TOKEN]
                        [--namespace NAMESPACE_ID] [--namespace2 NAMESPACE_ID]
                        [--persist DIR] [--verbose]
                        [--script NAME]... [--exit-on-stdin-eof]
  --port N          TCP port on 127.0.0.1 (0 = any free port; default 0)
  --token T         API token expected as "Authorization: Bearer T" (default test-token)
  --account-token T a token owned by the account: verifies only at
                    /accounts/ID/tokens/verify (default test-account-token)
  --readonly-token T a user token that may read but not write
                    (default test-readonly-token)
  --account ID      account id in the API path (default ${DEFAULTS.account})
  --namespace ID    KV namespace id in the API path (default ${DEFAULTS.namespace})
  --namespace2 ID   a second KV namespace, for a second target (default
                    ${DEFAULTS.namespace2})
  --persist DIR     keep KV data in DIR (default: a temporary directory, on
                    /dev/shm when possible, removed at exit)
  --script NAME     a Worker script the account has, for the Workers
                    secrets routes (repeatable; default: my-worker)
  --verbose         log Miniflare and workerd output to stderr
  --exit-on-stdin-eof  also stop when standard input is closed
`;

function die(msg) {
  process.stderr.write(`harness: ${msg}\n${USAGE}`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let val;
    const eq = arg.indexOf("=");
    if (arg.startsWith("--") && eq > 0) {
      val = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const need = () => {
      if (val !== undefined) return val;
      if (i + 1 >= argv.length) die(`${arg} needs a value`);
      return argv[++i];
    };
    switch (arg) {
      case "--port": {
        const v = need();
        if (!/^\d+$/.test(v) || Number(v) > 65535) die(`bad port '${v}'`);
        o.port = Number(v);
        break;
      }
      case "--token":
        o.token = need();
        if (o.token === "") die("--token must not be empty");
        break;
      case "--account":
        o.account = need();
        break;
      case "--account-token":
        o.accountToken = need();
        break;
      case "--readonly-token":
        o.readonlyToken = need();
        break;
      case "--namespace":
        o.namespace = need();
        break;
      case "--namespace2":
        o.namespace2 = need();
        break;
      case "--persist":
        o.persist = need();
        break;
      case "--script": {
        const v = need();
        // Cloudflare's script names: a letter first, a letter or digit
        // last, letters, digits, '_' and '-', at most 63.
        if (!/^[A-Za-z]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$/.test(v)) die(`bad script name '${v}'`);
        o.scripts.push(v);
        break;
      }
      case "--verbose":
        o.verbose = true;
        break;
      case "--exit-on-stdin-eof":
        o.exitOnStdinEof = true;
        break;
      case "-h":
      case "--help":
        process.stdout.write(USAGE);
        process.exit(0);
        break;
      default:
        die(`unknown argument '${arg}'`);
    }
  }
  if (o.scripts.length === 0) o.scripts.push("my-worker");
  for (const [name, v] of [["account", o.account], ["namespace", o.namespace],
    ["namespace2", o.namespace2]]) {
    if (!/^[0-9a-f]{32}$/.test(v)) die(`--${name} must be 32 lowercase hex characters`);
  }
  return o;
}

// Miniflare's Log writes with console.log (stdout); keep stdout for READY.
class StderrLog extends Log {
  log(message) {
    process.stderr.write(`${message}\n`);
  }
}

// The consumer Workers: one Miniflare instance per script, running
// consumer.js with the script's secrets as its environment.  Like
// Cloudflare, which deploys a new version of the Worker when a secret
// changes, it is restarted (setOptions) whenever the secrets it was started
// with differ from the script's current ones.  Requests are served one at a
// time, so a restart never races a read.
class Consumers {
  constructor(dir, verbose) {
    this.dir = dir;
    this.verbose = verbose;
    this.byScript = new Map();	// script -> {mf, secrets (JSON text)}
    this.queue = Promise.resolve();
  }

  options(secrets) {
    return {
      host: HOST,
      port: 0,
      log: this.verbose ? new StderrLog(LogLevel.DEBUG) : new NoOpLog(),
      handleRuntimeStdio(stdout, stderr) {
        for (const stream of [stdout, stderr]) stream.resume();
      },
      modules: true,
      scriptPath: path.join(this.dir, "consumer.js"),
      compatibilityDate: COMPATIBILITY_DATE,
      cf: false,
      bindings: secrets,
    };
  }

  // request: POST http://consumer/{rest} with {script, secrets}.
  fetch(request) {
    const run = this.queue.then(() => this.serve(request));
    this.queue = run.catch(() => {});
    return run;
  }

  async serve(request) {
    const { script, secrets } = await request.json();
    const rest = new URL(request.url).pathname;
    const key = JSON.stringify(Object.entries(secrets).sort());
    let c = this.byScript.get(script);
    if (c === undefined) {
      c = { mf: new Miniflare(this.options(secrets)), secrets: key };
      this.byScript.set(script, c);
    } else if (c.secrets !== key) {
      await c.mf.setOptions(this.options(secrets));
      c.secrets = key;
    }
    await c.mf.ready;
    const r = await c.mf.dispatchFetch(`http://consumer${rest}`);
    return new Response(await r.text(), {
      status: r.status,
      headers: { "content-type": "application/json" },
    });
  }

  async dispose() {
    for (const c of this.byScript.values()) await c.mf.dispose();
    this.byScript.clear();
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const here = path.dirname(fileURLToPath(import.meta.url));
  // workerd refuses module paths that climb above its working directory,
  // so run from here whatever directory the caller is in.
  process.chdir(here);

  // KV data: --persist DIR, else a private temporary directory, on tmpfs
  // (/dev/shm) when there is one: Miniflare's KV simulator writes every value
  // to a file, and tmpfs makes bulk writes about twice as fast.
  let kvPersist;
  let tempDir = null;
  if (opts.persist) {
    fs.mkdirSync(opts.persist, { recursive: true });
    kvPersist = path.resolve(opts.persist);
  } else {
    for (const root of ["/dev/shm", os.tmpdir()]) {
      try {
        tempDir = fs.mkdtempSync(path.join(root, "wfvault-kv-"));
        break;
      } catch {
        // try the next root
      }
    }
    kvPersist = tempDir ?? false;
  }
  const removeTemp = () => {
    if (tempDir) {
      try {
        fs.rmSync(tempDir, { recursive: true, force: true });
      } catch {
        // nothing more to do
      }
      tempDir = null;
    }
  };
  process.on("exit", removeTemp);

  const consumers = new Consumers(here, opts.verbose);
  const mf = new Miniflare({
    host: HOST,
    port: opts.port,
    log: opts.verbose ? new StderrLog(LogLevel.DEBUG) : new NoOpLog(),
    handleRuntimeStdio(stdout, stderr) {
      for (const stream of [stdout, stderr]) {
        if (opts.verbose) stream.pipe(process.stderr, { end: false });
        else stream.resume();
      }
    },
    modules: true,
    scriptPath: path.join(here, "worker.js"),
    compatibilityDate: COMPATIBILITY_DATE,
    // Never fetch the Request.cf object from the network; use the placeholder.
    cf: false,
    kvNamespaces: { TENANT_CONFIGS: opts.namespace, TENANT_CONFIGS_2: opts.namespace2 },
    kvPersist,
    bindings: {
      API_TOKEN: opts.token,
      ACCOUNT_TOKEN: opts.accountToken,
      READONLY_TOKEN: opts.readonlyToken,
      ACCOUNT_ID: opts.account,
      NAMESPACE_ID: opts.namespace,
      NAMESPACE_ID_2: opts.namespace2,
      SCRIPTS: JSON.stringify(opts.scripts),
    },
    // The consumer Worker of the Workers secrets routes (secrets.mjs).
    serviceBindings: { CONSUMER: (request) => consumers.fetch(request) },
  });

  // Miniflare registers exit-hook's SIGINT/SIGTERM listeners, which exit at
  // once with 128+signal; replace them with a clean asynchronous dispose.
  // (exit-hook's 'exit' listener stays as a last-resort kill of workerd.)
  let stopping = false;
  const stop = async (why) => {
    if (stopping) return;
    stopping = true;
    if (opts.verbose) process.stderr.write(`harness: stopping (${why})\n`);
    const force = setTimeout(() => process.exit(1), 10000);
    force.unref();
    try {
      await consumers.dispose();
      await mf.dispose();
    } catch (e) {
      process.stderr.write(`harness: dispose failed: ${e}\n`);
      process.exit(1);
    }
    removeTemp();
    process.exit(0);
  };
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"]) {
    process.removeAllListeners(sig);
    process.on(sig, () => stop(sig));
  }

  let url;
  try {
    url = await mf.ready;
  } catch (e) {
    process.stderr.write(`harness: Miniflare failed to start: ${e && e.stack ? e.stack : e}\n`);
    await mf.dispose().catch(() => {});
    process.exit(1);
  }
  if (url.hostname !== HOST) {
    process.stderr.write(`harness: Miniflare listens on ${url.hostname}, not ${HOST}\n`);
    await mf.dispose().catch(() => {});
    process.exit(1);
  }
  process.stdout.write(`READY http://${HOST}:${url.port}\n`);

  if (opts.exitOnStdinEof) {
    process.stdin.on("end", () => stop("stdin closed"));
    process.stdin.on("error", () => stop("stdin error"));
    process.stdin.resume();
  }
}

main().catch((e) => {
  process.stderr.write(`harness: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
