// The people this provider knows (from the config file) and the claims it says about them, in the shape NHS CIS2
// publishes: the ID token carries sub, acr, amr, selected_roleid and the assurance levels; userinfo the profile,
// email and, with the nationalrbacaccess scope, nhsid_nrbac_roles (one object per role profile).
import { createHash, timingSafeEqual } from 'node:crypto';

// CIS2's role object keys; anything else in a configured role (org_name, shown on the role page) stays here.
const ROLE_KEYS = [
  'person_roleid', 'person_orgid', 'org_code', 'role_code', 'role_name', 'activity_codes', 'activities',
];

export const CLAIMS = {
  openid: ['sub', 'acr', 'amr', 'selected_roleid', 'authentication_assurance_level', 'id_assurance_level', 'uid'],
  profile: ['name', 'given_name', 'family_name', 'uid'],
  email: ['email'],
  nationalrbacaccess: ['nhsid_nrbac_roles'],
  selectedrole: ['selected_roleid'],
};
export const SCOPES = Object.keys(CLAIMS);
export const CIS2_ACR_VALUES = ['AAL3_ANY', 'AAL2_OR_ABOVE', 'AAL2_ANY', 'AAL1_USERPASS'];

function digest(text) {
  return createHash('sha256').update(String(text)).digest();
}

function assuranceLevel(acr) {
  const level = /^AAL(\d)/.exec(acr ?? '');
  return level ? level[1] : '2';
}

export function validateAccounts(accounts) {
  if (!Array.isArray(accounts)) throw new Error('"accounts" must be an array');
  const seen = new Set();
  for (const account of accounts) {
    for (const key of ['sub', 'username', 'password']) {
      if (typeof account[key] !== 'string' || !account[key]) {
        throw new Error(`every account needs a non-empty string "${key}"`);
      }
    }
    if (seen.has(account.sub)) throw new Error(`two accounts have sub ${account.sub}`);
    seen.add(account.sub);
    for (const role of account.roles ?? []) {
      if (typeof role.person_roleid !== 'string' || !role.person_roleid) {
        throw new Error(`account ${account.sub}: every role needs a string "person_roleid"`);
      }
    }
  }
}

export class Accounts {
  #bySub;
  // grant id -> the person_roleid chosen on the role page (the grant is one sign-in's consent for one client)
  #selected = new Map();

  constructor(accounts) {
    validateAccounts(accounts);
    this.#bySub = new Map(accounts.map((account) => [account.sub, { ...account, roles: account.roles ?? [] }]));
  }

  get acrValues() {
    const used = [...this.#bySub.values()].map((account) => account.acr).filter(Boolean);
    return [...new Set([...CIS2_ACR_VALUES, ...used])];
  }

  get(sub) {
    return this.#bySub.get(sub);
  }

  // The account whose username and password these are (usernames ignore case, as email addresses do), or undefined.
  authenticate(username, password) {
    const wanted = String(username ?? '').trim().toLowerCase();
    const account = [...this.#bySub.values()].find((candidate) => candidate.username.toLowerCase() === wanted);
    const matches = timingSafeEqual(digest(account?.password ?? ''), digest(password ?? ''));
    return account && matches ? account : undefined;
  }

  login(account) {
    return {
      accountId: account.sub,
      acr: account.acr || 'AAL2_OR_ABOVE',
      amr: account.amr ?? ['PWD'],
      remember: true,
    };
  }

  select(grantId, roleId) {
    this.#selected.set(grantId, roleId);
  }

  selectedFor(grantId) {
    return this.#selected.get(grantId);
  }

  // oidc-provider's findAccount: the claims for an ID token (at the token endpoint the token is the code) or for
  // userinfo (the access token). Both carry the grant id, which says which role was chosen at this sign-in.
  find(ctx, sub, token) {
    const account = this.get(sub);
    if (!account) return undefined;
    const grantId = token?.grantId ?? ctx?.oidc?.entities?.Grant?.jti;
    const only = account.roles.length === 1 ? account.roles[0].person_roleid : undefined;
    const selected = this.selectedFor(grantId) ?? only;
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          uid: account.uid ?? sub,
          name: [account.given_name, account.family_name].filter(Boolean).join(' ') || undefined,
          given_name: account.given_name,
          family_name: account.family_name,
          email: account.email,
          authentication_assurance_level: assuranceLevel(account.acr),
          id_assurance_level: account.id_assurance_level ?? '3',
          selected_roleid: selected,
          nhsid_nrbac_roles: account.roles.map((role) => Object.fromEntries(
            ROLE_KEYS.filter((key) => role[key] !== undefined).map((key) => [key, role[key]]),
          )),
        };
      },
    };
  }
}
