// The provider's own pages: plain server-rendered HTML forms that work without JavaScript, with a label for every
// control, an error summary that is announced, and enough contrast for WCAG 2.2 AA. They say plainly that this is a
// test provider, never NHS CIS2.

const NAME = 'Test identity provider';

export function escape(value) {
  return String(value ?? '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

const STYLE = `
  body { font-family: Arial, sans-serif; color: #212b32; background: #f0f4f5; margin: 0; line-height: 1.5; }
  header { background: #005eb8; color: #fff; padding: 12px 24px; font-weight: bold; }
  main { max-width: 32rem; margin: 24px auto; background: #fff; padding: 24px; }
  h1 { font-size: 1.75rem; margin-top: 0; }
  label, legend { display: block; font-weight: bold; margin: 16px 0 4px; }
  input[type=text], input[type=password] { width: 100%; box-sizing: border-box; padding: 8px; font-size: 1rem;
    border: 2px solid #4c6272; }
  input:focus, button:focus, a:focus { outline: 4px solid #ffeb3b; outline-offset: 0; }
  fieldset { border: 0; padding: 0; margin: 0; }
  .option { display: flex; gap: 8px; align-items: center; margin: 8px 0; }
  .option label { display: inline; font-weight: normal; margin: 0; }
  button { margin-top: 24px; background: #007f3b; color: #fff; border: 0; padding: 10px 16px; font-size: 1rem;
    font-weight: bold; cursor: pointer; }
  .error-summary { border: 4px solid #d5281b; padding: 12px 16px; margin-bottom: 16px; }
  .error-summary h2 { font-size: 1.25rem; margin: 0 0 8px; }
  .error { color: #d5281b; font-weight: bold; margin: 0; }
  a { color: #005eb8; }
  .hint { color: #4c6272; }
`;

function layout(title, body, { script = '' } = {}) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${escape(title)} - ${NAME}</title>
  <style>${STYLE}</style>
</head>
<body>
  <header>${NAME} (for tests and the demo; not NHS CIS2)</header>
  <main>
${body}
  </main>
${script}
</body>
</html>`;
}

function errorSummary(error) {
  if (!error) return '';
  return `    <div class="error-summary" role="alert" aria-labelledby="error-title" tabindex="-1">
      <h2 id="error-title">There is a problem</h2>
      <p class="error" id="form-error">${escape(error)}</p>
    </div>\n`;
}

export function signInPage({ action, cancel, clientName, username = '', error = '' }) {
  const described = error ? ' aria-describedby="form-error" aria-invalid="true"' : '';
  return layout(error ? `Error: Sign in` : 'Sign in', `${errorSummary(error)}    <h1>Sign in</h1>
    <p class="hint">to continue to ${escape(clientName)}</p>
    <form method="post" action="${escape(action)}" novalidate>
      <label for="username">Username</label>
      <input type="text" id="username" name="username" value="${escape(username)}" autocomplete="username"
        spellcheck="false" autocapitalize="none"${described}>
      <label for="password">Password</label>
      <input type="password" id="password" name="password" autocomplete="current-password"${described}>
      <button type="submit">Sign in</button>
    </form>
    <p><a href="${escape(cancel)}">Cancel sign-in</a></p>`);
}

// CIS2's role_name is its three levels quoted ("Clinical":"Clinical Provision":"Nurse Access Role"): show the last.
function roleName(role) {
  const levels = [...String(role.role_name ?? '').matchAll(/"([^"]*)"/g)].map((match) => match[1]);
  return levels.at(-1) || role.role_name || role.role_code;
}

export function rolePage({ action, cancel, name, roles, error = '' }) {
  const options = roles.map((role, index) => {
    const id = `role-${index}`;
    const where = role.org_name ? `${role.org_name} (${role.org_code})` : role.org_code;
    return `        <div class="option">
          <input type="radio" id="${id}" name="role" value="${escape(role.person_roleid)}">
          <label for="${id}">${escape(where)}: ${escape(roleName(role))}</label>
        </div>`;
  }).join('\n');
  const described = error ? ' aria-describedby="form-error"' : '';
  const title = error ? 'Error: Select a role' : 'Select a role';
  return layout(title, `${errorSummary(error)}    <form method="post" action="${escape(action)}">
      <fieldset${described}>
        <legend><h1>Select a role</h1></legend>
        <p class="hint">${escape(name)}, you hold more than one role. Choose the one you are working in now.</p>
${options}
      </fieldset>
      <button type="submit">Continue</button>
    </form>
    <p><a href="${escape(cancel)}">Cancel sign-in</a></p>`);
}

// oidc-provider gives the form (its action and the xsrf field); the button goes inside it. With a valid
// id_token_hint the page submits itself (what an identity provider does for a relying party it knows); without
// one, or without JavaScript, the "Sign out" button does the same.
export function logoutPage({ form, name, automatic }) {
  const button = '<button type="submit" id="sign-out" name="logout" value="yes">Sign out</button>';
  const withButton = form.replace('</form>', `${button}</form>`);
  const script = automatic
    ? `  <script>document.getElementById('op.logoutForm').requestSubmit(document.getElementById('sign-out'));</script>`
    : '';
  return layout('Sign out', `    <h1>Sign out</h1>
    <p>${name ? `You are signed in as ${escape(name)}.` : 'You are signed in.'} Signing out here signs you out of every
    service that uses this provider.</p>
    ${withButton}`, { script });
}

export function signedOutPage() {
  return layout('You have signed out', `    <h1>You have signed out</h1>
    <p>You can close this window.</p>`);
}

export function errorPage({ error, description }) {
  return layout('There is a problem', `    <h1>There is a problem</h1>
    <p class="error">${escape(error)}</p>
    ${description ? `<p>${escape(description)}</p>` : ''}`);
}
