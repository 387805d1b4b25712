// A real OpenID provider on loopback: panva's oidc-provider (certified by the
// OpenID Foundation), for s3warden's tests and the browser-upload example.
// It serves discovery, JWKS, the authorization endpoint with its
// development login page (any login name, any password), and the token
// endpoint; ID tokens are signed with RS256 or ES256 per client. Clients are
// public (no secret) and must use the authorization code flow with PKCE.
// First-party clients: no consent page, the grant of `openid` is implied.
//
// Usage: node oidc-provider.mjs --port PORT --cert CERT.pem --key KEY.pem \
//          --client CLIENT_ID,REDIRECT_URI[,RS256|ES256] [--client ...]
// The issuer is https://localhost:PORT (PORT 0: a free port, chosen when it
// binds). Signing keys are made afresh at each start, so a restart on the
// same port is a key rotation. Prints "ready ISSUER" once it listens on
// 127.0.0.1.
import { generateKeyPairSync, randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:https";
import { parseArgs } from "node:util";

import Provider from "oidc-provider";

const { values: args } = parseArgs({
  options: {
    port: { type: "string" },
    cert: { type: "string" },
    key: { type: "string" },
    client: { type: "string", multiple: true, default: [] },
  },
});
if (!args.port || !args.cert || !args.key || args.client.length === 0) {
  console.error("usage: oidc-provider.mjs --port PORT --cert CERT --key KEY --client ID,REDIRECT_URI[,ALG]");
  process.exit(2);
}

// One key per algorithm; the key id changes at every start.
function signingKey(type, options, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: "jwk" }), kid: randomUUID(), alg, use: "sig" };
}
const keys = [
  signingKey("rsa", { modulusLength: 2048 }, "RS256"),
  signingKey("ec", { namedCurve: "P-256" }, "ES256"),
];

const clients = args.client.map((spec) => {
  const [client_id, redirect_uri, alg = "RS256"] = spec.split(",");
  if (!["RS256", "ES256"].includes(alg)) {
    throw new Error(`client ${client_id}: alg ${alg} is neither RS256 nor ES256`);
  }
  return {
    client_id,
    redirect_uris: [redirect_uri],
    token_endpoint_auth_method: "none",
    grant_types: ["authorization_code"],
    response_types: ["code"],
    id_token_signed_response_alg: alg,
  };
});

// Bound first: the issuer names the port.
const server = createServer({ cert: readFileSync(args.cert), key: readFileSync(args.key) });
await new Promise((resolve, reject) => {
  server.once("error", reject);
  server.listen(Number(args.port), "127.0.0.1", resolve);
});
const issuer = `https://localhost:${server.address().port}`;

const provider = new Provider(issuer, {
  clients,
  jwks: { keys },
  cookies: { keys: [randomBytes(32).toString("hex")] },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  // The login name is the subject.
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  // First-party clients: an existing grant, or else `openid` granted at once
  // instead of a consent page.
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      return ctx.oidc.provider.Grant.find(grantId);
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope("openid");
    await grant.save();
    return grant;
  },
});

server.on("request", provider.callback());
console.log(`ready ${issuer}`);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
