// The provider's interactions (oidc-provider hands the browser here when it needs the user): sign in with a
// username and password, then, for someone holding more than one role, choose the role to work in (CIS2's
// selectedrole). Clients are first-party relying parties, so consent is given without a page, as CIS2 does.
//
//   GET  /interaction/:uid         the sign-in page, the role page once signed in, or (consent) straight on
//   POST /interaction/:uid/login   username + password
//   POST /interaction/:uid/role    role = a person_roleid of the signed-in account
//   GET  /interaction/:uid/abort   cancel: access_denied back to the relying party
import { errors } from 'oidc-provider';

import { errorPage, rolePage, signInPage } from './pages.mjs';

const ROUTE = /^\/interaction\/([\w-]+)(?:\/(login|role|abort))?$/;
const FORM_LIMIT = 16 * 1024;

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > FORM_LIMIT) throw new errors.InvalidRequest('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function html(ctx, status, body) {
  ctx.status = status;
  ctx.type = 'html';
  ctx.set('cache-control', 'no-store');
  ctx.body = body;
}

// The scopes (and claims) asked for, granted to this client for this account: one grant per sign-in.
async function grantFor(provider, details, accountId) {
  let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
  if (!grant || grant.accountId !== accountId) {
    grant = new provider.Grant({ accountId, clientId: details.params.client_id });
  }
  grant.addOIDCScope(String(details.params.scope ?? 'openid'));
  return grant;
}

async function finishWithRole(provider, accounts, ctx, details, account, roleId) {
  const grant = await grantFor(provider, details, account.sub);
  const grantId = await grant.save();
  if (roleId) accounts.select(grantId, roleId);
  ctx.respond = false;
  await provider.interactionFinished(ctx.req, ctx.res, {
    login: accounts.login(account),
    consent: { grantId },
  }, { mergeWithLastSubmission: false });
}

// Anything a consent prompt still finds missing (a scope asked for later, with a session): granted, as for any
// first-party client.
async function finishConsent(provider, ctx, details) {
  const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = details.prompt.details;
  const grant = await grantFor(provider, details, details.session.accountId);
  if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
  if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  ctx.respond = false;
  await provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId: await grant.save() } }, {
    mergeWithLastSubmission: true,
  });
}

export function interactions(provider, accounts) {
  async function page(ctx, uid, details, { error = '', username = '', status = 200 } = {}) {
    const urls = { cancel: `/interaction/${uid}/abort` };
    const signedIn = details.result?.login && accounts.get(details.result.login.accountId);
    if (signedIn) {
      const name = [signedIn.given_name, signedIn.family_name].filter(Boolean).join(' ') || signedIn.username;
      return html(ctx, status, rolePage({
        ...urls, action: `/interaction/${uid}/role`, name, roles: signedIn.roles, error,
      }));
    }
    const client = await provider.Client.find(details.params.client_id);
    return html(ctx, status, signInPage({
      ...urls,
      action: `/interaction/${uid}/login`,
      clientName: client?.clientName ?? details.params.client_id,
      username,
      error,
    }));
  }

  async function signIn(ctx, uid, details) {
    const form = await readForm(ctx.req);
    const account = accounts.authenticate(form.get('username'), form.get('password'));
    if (!account) {
      return page(ctx, uid, details, {
        status: 401, username: form.get('username') ?? '', error: 'The username or password is not right.',
      });
    }
    if (account.roles.length > 1) {
      // Signed in, not finished: the role page reads the login back from the interaction (303: GET it).
      await provider.interactionResult(ctx.req, ctx.res, { login: accounts.login(account) }, {
        mergeWithLastSubmission: false,
      });
      ctx.status = 303;
      return ctx.redirect(`/interaction/${uid}`);
    }
    return finishWithRole(provider, accounts, ctx, details, account, account.roles[0]?.person_roleid);
  }

  async function chooseRole(ctx, uid, details) {
    const form = await readForm(ctx.req);
    const account = details.result?.login && accounts.get(details.result.login.accountId);
    if (!account) {
      ctx.status = 303;
      return ctx.redirect(`/interaction/${uid}`);
    }
    const roleId = form.get('role');
    if (!account.roles.some((role) => role.person_roleid === roleId)) {
      return page(ctx, uid, details, { status: 400, error: 'Select the role you are working in.' });
    }
    return finishWithRole(provider, accounts, ctx, details, account, roleId);
  }

  return async function interaction(ctx, next) {
    const match = ROUTE.exec(ctx.path);
    if (!match) return next();
    const [, uid, action] = match;
    const method = action === 'login' || action === 'role' ? 'POST' : 'GET';
    if (ctx.method !== method) {
      ctx.set('allow', method);
      return html(ctx, 405, errorPage({ error: 'This page cannot be opened that way.', description: `Use ${method}` }));
    }
    try {
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      if (details.uid !== uid) throw new errors.SessionNotFound('interaction and address do not match');
      if (action === 'abort') {
        ctx.respond = false;
        return await provider.interactionFinished(ctx.req, ctx.res, {
          error: 'access_denied', error_description: 'The user cancelled the sign-in.',
        }, { mergeWithLastSubmission: false });
      }
      if (details.prompt.name === 'consent' && details.session?.accountId) {
        return await finishConsent(provider, ctx, details);
      }
      if (action === 'login') return await signIn(ctx, uid, details);
      if (action === 'role') return await chooseRole(ctx, uid, details);
      return await page(ctx, uid, details);
    } catch (error) {
      if (!(error instanceof errors.OIDCProviderError)) throw error;
      ctx.respond = true;
      return html(ctx, error.statusCode ?? 400, errorPage({
        error: error instanceof errors.SessionNotFound
          ? 'This sign-in has expired or was already finished. Go back to the service and sign in again.'
          : error.error,
        description: error.error_detail ?? error.error_description,
      }));
    }
  };
}
