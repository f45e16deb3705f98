// A real OpenID Connect provider (panva/oidc-provider) for the end-to-end sign-in tests, on 127.0.0.1 only.
//
//   node provider.mjs   with  PORT, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, ACCOUNTS_FILE (, POST_LOGOUT_URI)
//
// Accounts are read from ACCOUNTS_FILE (JSON: {"login": {"name": "张敏", "groups": ["rulesvc-editors"]}})
// at every sign-in, so a test changes a person's groups by rewriting the file. Sign-in uses the provider's
// own development login and consent pages (devInteractions): any password is accepted for a listed login.
// Prints "listening <issuer>" once it accepts connections; stops with its parent (stdin closed).
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 0);
const issuer = `http://127.0.0.1:${port}`;

function accounts() {
  return JSON.parse(readFileSync(process.env.ACCOUNTS_FILE, 'utf8'));
}

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.CLIENT_ID,
      client_secret: process.env.CLIENT_SECRET,
      redirect_uris: [process.env.REDIRECT_URI],
      post_logout_redirect_uris: process.env.POST_LOGOUT_URI ? [process.env.POST_LOGOUT_URI] : [],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  conformIdTokenClaims: false,
  cookies: { keys: ['rulesvc-test-provider-cookie-key'] },
  features: { devInteractions: { enabled: true } },
  async findAccount(_ctx, id) {
    const account = accounts()[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        const current = accounts()[id] || {};
        return {
          sub: id,
          name: current.name || id,
          preferred_username: id,
          groups: current.groups || [],
        };
      },
    };
  },
});

const server = provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${issuer}\n`);
});
process.stdin.on('end', () => server.close(() => process.exit(0)));
process.stdin.resume();
