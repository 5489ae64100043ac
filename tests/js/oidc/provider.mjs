// A real OpenID Connect provider (npm's oidc-provider, OpenID Certified) with CIS2-shaped claims, on loopback, for
// the tests and the demo. README.md beside this file describes the config file.
//
//   node tests/js/oidc/provider.mjs --config FILE
//
// Logs one line per request to stdout; stops cleanly on SIGTERM or SIGINT.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

import { Accounts } from './accounts.mjs';
import { configuration } from './configuration.mjs';
import { interactions } from './interactions.mjs';

function readConfig() {
  const { values } = parseArgs({ options: { config: { type: 'string' } } });
  if (!values.config) throw new Error('usage: node provider.mjs --config FILE');
  const config = JSON.parse(readFileSync(values.config, 'utf8'));
  const issuer = new URL(config.issuer);
  if (issuer.protocol !== 'http:' || !['127.0.0.1', 'localhost'].includes(issuer.hostname)) {
    throw new Error('"issuer" must be http://127.0.0.1:PORT (or localhost): this provider is for loopback only');
  }
  const port = Number(config.port ?? issuer.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535 || String(port) !== issuer.port) {
    throw new Error('"port" must be the issuer\'s port');
  }
  if (!Array.isArray(config.clients) || config.clients.length === 0) {
    throw new Error('"clients" must be a non-empty array');
  }
  return { ...config, issuer: config.issuer.replace(/\/$/, ''), port, host: issuer.hostname };
}

function start() {
  const config = readConfig();
  const accounts = new Accounts(config.accounts ?? []);
  const provider = new Provider(config.issuer, configuration({ clients: config.clients, accounts, jwks: config.jwks }));
  provider.use(interactions(provider, accounts));

  for (const event of ['authorization.error', 'grant.error', 'userinfo.error', 'end_session.error']) {
    provider.on(event, (ctx, error) => {
      const { error_description: description = '', error_detail: detail = '' } = error;
      console.log(`  ${event}: ${error.error ?? error.name} ${description} ${detail}`.trimEnd());
    });
  }
  provider.on('server_error', (ctx, error) => console.error(error));

  const handle = provider.callback();
  const server = createServer((req, res) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      console.log(`${req.method} ${req.url} ${res.statusCode} ${ms.toFixed(1)}ms`);
    });
    handle(req, res);
  });

  server.on('error', (error) => {
    console.error(`test OpenID provider: ${error.message}`);
    process.exit(2);
  });
  server.listen(config.port, config.host, () => {
    const counts = `${config.clients.length} clients, ${config.accounts?.length ?? 0} accounts`;
    console.log(`test OpenID provider: ${config.issuer} (${counts})`);
  });

  const stop = (signal) => {
    console.log(`${signal}: stopping`);
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

try {
  start();
} catch (error) {
  console.error(`test OpenID provider: ${error.message}`);
  process.exit(2);
}
