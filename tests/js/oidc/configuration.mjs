// oidc-provider's configuration for a CIS2-shaped test provider: authorization code flow only, PKCE (S256) always,
// client_secret_basic, client_secret_post and private_key_jwt, RP-initiated logout, CIS2's scopes and claims.
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';

import { CLAIMS, SCOPES } from './accounts.mjs';
import { errorPage, logoutPage, signedOutPage } from './pages.mjs';

const HOUR = 60 * 60;

// An RS256 signing key made at start, unless the config file brings its own private JWKS.
export function signingKeys(jwks) {
  if (jwks) return jwks;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' }] };
}

function page(ctx, body) {
  ctx.type = 'html';
  ctx.set('cache-control', 'no-store');
  ctx.body = body;
}

export function configuration({ clients, accounts, jwks }) {
  return {
    clients,
    clientDefaults: {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      id_token_signed_response_alg: 'RS256',
      token_endpoint_auth_method: 'client_secret_basic',
    },
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    responseTypes: ['code'],
    pkce: { required: () => true },
    scopes: SCOPES,
    claims: CLAIMS,
    acrValues: accounts.acrValues,
    // With an access token issued, the ID token carries only the openid scope's claims (sub, acr, amr,
    // selected_roleid, the assurance levels, uid); the profile, email and roles come from userinfo, as in CIS2.
    conformIdTokenClaims: true,
    findAccount: (ctx, sub, token) => accounts.find(ctx, sub, token),
    // Single sign-on across the relying parties in the config: with a signed-in session, another client gets a
    // grant (and the role chosen at sign-in) without any page, so prompt=none works for it too.
    async loadExistingGrant(ctx) {
      const { provider, session, client } = ctx.oidc;
      const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
      if (grantId) return provider.Grant.find(grantId);
      if (!session.accountId) return undefined;
      const grant = new provider.Grant({ accountId: session.accountId, clientId: client.clientId });
      grant.addOIDCScope(SCOPES.join(' '));
      const id = await grant.save();
      const chosen = Object.values(session.authorizations ?? {})
        .map((authorization) => accounts.selectedFor(authorization.grantId))
        .find(Boolean);
      if (chosen) accounts.select(id, chosen);
      return grant;
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          const account = accounts.get(ctx.oidc.session.accountId);
          const name = account && [account.given_name, account.family_name].filter(Boolean).join(' ');
          page(ctx, logoutPage({ form, name, automatic: Boolean(ctx.oidc.entities.IdTokenHint) }));
        },
        async postLogoutSuccessSource(ctx) {
          page(ctx, signedOutPage());
        },
      },
    },
    async renderError(ctx, out) {
      page(ctx, errorPage({ error: out.error, description: out.error_description }));
    },
    // Plain HTTP on 127.0.0.1: oidc-provider marks cookies Secure only on HTTPS requests, so these work there.
    cookies: {
      keys: [randomBytes(32).toString('base64url')],
      names: { session: 'op_session', interaction: 'op_interaction', resume: 'op_interaction_resume' },
    },
    ttl: {
      AccessToken: HOUR,
      AuthorizationCode: 60,
      IdToken: HOUR,
      Interaction: HOUR,
      Grant: 12 * HOUR,
      Session: 12 * HOUR,
    },
    jwks: signingKeys(jwks),
  };
}
