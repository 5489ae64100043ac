// A second real FHIR client, npm's fhir-kit-client, reading one patient's record from carerecord as a partner's
// app would: the CapabilityStatement (through the client's own CapabilityTool), a Patient search by NHS number,
// searches with parameters, paging by `next` links, _include, _summary=count, _sort, a refused parameter, read,
// vread, _history and $everything.
//
//   node fhir_kit_client_check.mjs <base URL> <bearer token> <NHS number>
//
// Prints one JSON object of what it read; the assertions are in tests/fhirapi/test_fhir_kit_client.py. A request
// the server refuses is recorded as {status, issues} (never thrown), so a refusal is something to assert on.
import { CapabilityTool, Client } from 'fhir-kit-client';

const [baseUrl, token, nhsNumber] = process.argv.slice(2);
if (!baseUrl || !token || !nhsNumber) {
  console.error('usage: node fhir_kit_client_check.mjs <base URL> <bearer token> <NHS number>');
  process.exit(2);
}
const client = new Client({ baseUrl, bearerToken: token });
const SNOMED = 'http://snomed.info/sct';

async function attempt(read) {
  try {
    return await read();
  } catch (error) {
    if (!error.response) throw error;
    const data = error.response.data;
    const issues = (data && data.issue) || [];
    return {
      refused: error.response.status,
      issues: issues.map((issue) => ({ code: issue.code, expression: issue.expression || [], text: issue.diagnostics })),
    };
  }
}

const matches = (bundle) => (bundle.entry || []).filter((entry) => (entry.search || {}).mode !== 'include');
const included = (bundle) => (bundle.entry || []).filter((entry) => (entry.search || {}).mode === 'include');
const ids = (entries) => entries.map((entry) => `${entry.resource.resourceType}/${entry.resource.id}`);
const selfLink = (bundle) => ((bundle.link || []).find((link) => link.relation === 'self') || {}).url;

// Every page of a search, by the server's next links.
async function allPages(first) {
  const pages = [];
  let bundle = first;
  while (bundle && !bundle.refused) {
    pages.push({ self: selfLink(bundle), total: bundle.total, matches: ids(matches(bundle)), included: ids(included(bundle)) });
    if (pages.length > 20) throw new Error('more than 20 pages: the next links do not end');
    bundle = await attempt(async () => (await client.nextPage({ bundle })) ?? null);
  }
  return bundle && bundle.refused ? { refused: bundle.refused, issues: bundle.issues, pages } : pages;
}

function search(resourceType, searchParams) {
  return attempt(() => client.search({ resourceType, searchParams }));
}

const out = {};

const statement = await client.capabilityStatement();
const capabilities = new CapabilityTool(statement);
const security = statement.rest[0].security || {};
out.capability = {
  fhirVersion: statement.fhirVersion,
  transaction: capabilities.serverCan('transaction'),
  interactions: Object.fromEntries(
    ['Patient', 'Condition', 'Observation', 'Binary', 'Practitioner'].map((type) => [
      type,
      capabilities.interactionsFor({ resourceType: type }),
    ]),
  ),
  searchParams: Object.fromEntries(
    ['Patient', 'Condition', 'Observation'].map((type) => [type, capabilities.searchParamsFor({ resourceType: type })]),
  ),
  security: (security.service || []).flatMap((service) => (service.coding || []).map((coding) => coding.code)),
};

const found = await search('Patient', { identifier: `https://fhir.nhs.uk/Id/nhs-number|${nhsNumber}` });
const patientId = found.refused ? null : matches(found)[0].resource.id;
out.patient = patientId;
if (!patientId) {
  console.log(JSON.stringify(out));
  process.exit(0);
}

out.activeConditions = await allPages(
  await search('Condition', {
    patient: patientId,
    'clinical-status': 'active',
    _include: 'Condition:patient',
    _count: '1',
  }),
);
out.byCode = await search('Condition', { patient: patientId, code: `${SNOMED}|38341003` });
out.byCode = out.byCode.refused ? out.byCode : ids(matches(out.byCode));
out.onsetSince2015 = await search('Condition', { patient: patientId, 'onset-date': 'ge2015-01-01' });
out.onsetSince2015 = out.onsetSince2015.refused ? out.onsetSince2015 : ids(matches(out.onsetSince2015));
const sorted = await search('Condition', { patient: patientId, _sort: 'date' });
out.sortedByDate = sorted.refused ? sorted : matches(sorted).map((entry) => entry.resource.onsetDateTime || null);
const counted = await search('Condition', { patient: patientId, _summary: 'count' });
out.count = counted.refused ? counted : { total: counted.total, entries: (counted.entry || []).length };
const vitals = await search('Observation', { patient: patientId, category: 'vital-signs' });
out.vitalSigns = vitals.refused ? vitals : matches(vitals).map((entry) => entry.resource.code.coding[0].code);
out.unknownParameter = await search('Condition', { patient: patientId, 'made-up': 'x' });

// read, _history and vread of the diabetes Condition (sent twice: two versions).
const diabetes = await search('Condition', { patient: patientId, code: `${SNOMED}|44054006` });
if (!diabetes.refused && matches(diabetes).length) {
  const id = matches(diabetes)[0].resource.id;
  const current = await attempt(() => client.read({ resourceType: 'Condition', id }));
  const history = await attempt(() => client.history({ resourceType: 'Condition', id }));
  const first = await attempt(() => client.vread({ resourceType: 'Condition', id, version: '1' }));
  const note = (resource) => ((resource.note || [])[0] || {}).text || null;
  out.versions = {
    id,
    read: current.refused ? current : { versionId: current.meta.versionId, note: note(current) },
    history: history.refused
      ? history
      : (history.entry || []).map((entry) => ({
          versionId: entry.resource.meta.versionId,
          note: note(entry.resource),
          method: (entry.request || {}).method,
        })),
    vread: first.refused ? first : { versionId: first.meta.versionId, note: note(first) },
  };
} else {
  out.versions = diabetes;
}

out.everything = await allPages(
  await attempt(() =>
    client.operation({ name: 'everything', resourceType: 'Patient', id: patientId, method: 'GET', input: { _count: '3' } }),
  ),
);
const onlyConditions = await attempt(() =>
  client.operation({ name: 'everything', resourceType: 'Patient', id: patientId, method: 'GET', input: { _type: 'Condition' } }),
);
out.everythingConditions = onlyConditions.refused ? onlyConditions : ids(onlyConditions.entry || []);

console.log(JSON.stringify(out));
// Keep-alive sockets would hold the process open after the last answer.
process.exit(0);
