// A Worker that reads tenant configs through edge/wfvault-config.js, for
// its tests (test_edge.mjs) and the agent's (edge_read.mjs).
// GET /config/{tenant}[?prefix=P][&allow_plaintext=1] answers
// {"ok":true,"config":...} or {"ok":false,"name":...,"error":...}.
import { getTenantConfig } from "./wfvault-config.js";

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const m = /^\/config\/([^/]+)$/.exec(url.pathname);
    if (m === null) return new Response("not found\n", { status: 404 });
    const options = {};
    if (url.searchParams.has("prefix")) options.prefix = url.searchParams.get("prefix");
    if (url.searchParams.get("allow_plaintext") === "1") options.allowPlaintext = true;
    try {
      const config = await getTenantConfig(env, decodeURIComponent(m[1]), options);
      return Response.json({ ok: true, config });
    } catch (e) {
      return Response.json({ ok: false, name: e.name, error: e.message });
    }
  },
};
