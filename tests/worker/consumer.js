// The consumer Worker of the Workers secrets stand-in: a Worker written the
// way a production Worker reads its secrets.  harness.mjs runs it with the
// script's current secrets as its environment (secret_text bindings are
// plain strings on env, as on Cloudflare).
//
//   GET /openai       {"name":"OPENAI_API_KEY","value": env.OPENAI_API_KEY}
//   GET /env/{NAME}   {"name":NAME,"value": env[NAME]} (null when unset)
//   GET /env          {"names":[...]}: the binding names, never a value

export default {
  async fetch(request, env) {
    const path = new URL(request.url).pathname;
    if (path === "/openai") {
      // The pattern the product promises, verbatim:
      const apiKey = env.OPENAI_API_KEY;
      return Response.json({ name: "OPENAI_API_KEY", value: apiKey ?? null });
    }
    if (path === "/env") {
      return Response.json({ names: Object.keys(env).sort() });
    }
    const m = /^\/env\/([A-Za-z_$][A-Za-z0-9_$]*)$/.exec(path);
    if (m) {
      const v = env[m[1]];
      return Response.json({ name: m[1], value: typeof v === "string" ? v : null });
    }
    return Response.json({ error: `no route ${path}` }, { status: 404 });
  },
};
