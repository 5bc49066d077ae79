// Starts edge_worker.js with edge/wfvault-config.js on Miniflare (the real
// workerd runtime), one Worker per entry of `workers` ({name, bindings}),
// all bound to one KV namespace as TENANT_CONFIGS.  Shared by
// test_edge.mjs and edge_read.mjs.
import { fileURLToPath } from "node:url";
import path from "node:path";
import fs from "node:fs";
import { Miniflare, NoOpLog } from "miniflare";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const MODULE_PATH = path.join(HERE, "..", "..", "edge", "wfvault-config.js");

export async function startEdge(workers) {
  // workerd refuses module paths that climb above its working directory,
  // so run from here whatever directory the caller is in (as harness.mjs).
  process.chdir(HERE);
  // The module lives outside this folder, which workerd will not climb
  // out of: hand both files over as contents.
  const modules = [
    { type: "ESModule", path: "edge_worker.js", contents: fs.readFileSync(path.join(HERE, "edge_worker.js"), "utf8") },
    { type: "ESModule", path: "wfvault-config.js", contents: fs.readFileSync(MODULE_PATH, "utf8") },
  ];
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    log: new NoOpLog(),
    handleRuntimeStdio(stdout, stderr) {
      for (const stream of [stdout, stderr]) {
        if (process.env.EDGE_VERBOSE) stream.pipe(process.stderr, { end: false });
        else stream.resume();
      }
    },
    cf: false,
    kvPersist: false,
    workers: workers.map((w) => ({
      name: w.name,
      modules,
      modulesRoot: HERE,
      compatibilityDate: "2025-07-01",
      kvNamespaces: { TENANT_CONFIGS: "wfvault-edge-test" },
      bindings: w.bindings ?? {},
    })),
  });
  await mf.ready;
  const kv = await mf.getKVNamespace("TENANT_CONFIGS", workers[0].name);
  return {
    mf,
    kv,
    // GET /config/{tenant}?query on the Worker named name: its JSON.
    async read(name, tenant, query = "") {
      const w = await mf.getWorker(name);
      const r = await w.fetch(`http://edge/config/${encodeURIComponent(tenant)}${query}`);
      return r.json();
    },
    dispose: () => mf.dispose(),
  };
}
