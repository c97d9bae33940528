// fhir-kit-client driving Infusion Bridge's FHIR base; one JSON line per step:
// {"step": ..., "ok": true|false, "detail": ...}. Run by tests/interop/test_fhir_kit_client.py:
//   node driver.mjs <base URL> <MedicationRequest template JSON file> ["Name: value" ...]
// fhir-kit-client has no resource models: each returned resource is checked for its
// resourceType (and Bundles for their entries) by isResource() below.
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { Client } from 'fhir-kit-client';

const [baseUrl, templatePath, ...headerArgs] = process.argv.slice(2);
const customHeaders = Object.fromEntries(
  headerArgs.map((h) => [h.slice(0, h.indexOf(':')).trim(), h.slice(h.indexOf(':') + 1).trim()]),
);
const client = new Client({ baseUrl, customHeaders });
const template = JSON.parse(readFileSync(templatePath, 'utf8'));
const patient = `fkc-${randomUUID().slice(0, 12)}`;

function newOrder() {
  const order = structuredClone(template);
  delete order.id;
  order.identifier[0].value = `FKC-${randomUUID()}`;
  order.subject = { reference: `Patient/${patient}` };
  return order;
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

function isResource(resource, type) {
  check(resource && resource.resourceType === type, `expected ${type}, got ${JSON.stringify(resource)?.slice(0, 200)}`);
  if (type === 'Bundle') {
    for (const entry of resource.entry ?? []) {
      if (entry.resource) check(typeof entry.resource.resourceType === 'string', 'entry without resourceType');
    }
  }
  return resource;
}

async function status(promise) {
  try {
    await promise;
    return 200;
  } catch (error) {
    if (!error.response) throw error;
    return error.response.status;
  }
}

async function step(name, body) {
  let ok = true;
  let detail;
  try {
    detail = String(await body());
  } catch (error) {
    ok = false;
    detail = `${error.message} ${JSON.stringify(error.response?.data ?? '').slice(0, 500)}`;
  }
  process.stdout.write(`${JSON.stringify({ step: name, ok, detail })}\n`);
}

const create = async () =>
  isResource(await client.create({ resourceType: 'MedicationRequest', body: newOrder() }), 'MedicationRequest');

await step('capabilities', async () => {
  const cs = isResource(await client.capabilityStatement(), 'CapabilityStatement');
  check(cs.fhirVersion === '4.0.1', `fhirVersion ${cs.fhirVersion}`);
  const orders = cs.rest[0].resource.find((r) => r.type === 'MedicationRequest');
  check(orders.searchParam.some((p) => p.name === 'identifier'), 'no identifier search parameter');
  return 'ok';
});

await step('create-read-vread', async () => {
  const created = await create();
  check(created.meta.versionId === '1', `version ${created.meta.versionId}`);
  const read = isResource(await client.read({ resourceType: 'MedicationRequest', id: created.id }), 'MedicationRequest');
  check(read.subject.reference === `Patient/${patient}`, 'read differs');
  const v1 = isResource(
    await client.vread({ resourceType: 'MedicationRequest', id: created.id, version: '1' }),
    'MedicationRequest',
  );
  check(v1.meta.versionId === '1', `vread ${v1.meta.versionId}`);
  const history = isResource(await client.history({ resourceType: 'MedicationRequest', id: created.id }), 'Bundle');
  check(history.type === 'history' && history.total === 1, `history ${history.type} ${history.total}`);
  return created.id;
});

await step('conditional-create', async () => {
  const order = newOrder();
  const { system, value } = order.identifier[0];
  const options = { headers: { 'If-None-Exist': `identifier=${encodeURIComponent(`${system}|${value}`)}` } };
  const first = await client.create({ resourceType: 'MedicationRequest', body: order, options });
  const again = await client.create({ resourceType: 'MedicationRequest', body: order, options });
  check(Client.httpFor(first).response.status === 201, 'first not 201');
  check(Client.httpFor(again).response.status === 200, 'second not 200');
  check(first.id === again.id, `${first.id} != ${again.id}`);
  return first.id;
});

await step('update-read-modify-write', async () => {
  const created = await create();
  const read = await client.read({ resourceType: 'MedicationRequest', id: created.id });
  read.status = 'on-hold';
  const updated = isResource(
    await client.update({ resourceType: 'MedicationRequest', id: read.id, body: read }),
    'MedicationRequest',
  );
  check(updated.meta.versionId === '2', `version ${updated.meta.versionId}`);
  const after = await client.read({ resourceType: 'MedicationRequest', id: created.id });
  check(after.status === 'on-hold', `status ${after.status}`);
  return 'saved';
});

await step('stale-if-match-412', async () => {
  const created = await create();
  created.status = 'on-hold';
  await client.update({ resourceType: 'MedicationRequest', id: created.id, body: created });
  created.status = 'stopped';
  const code = await status(
    client.update({
      resourceType: 'MedicationRequest',
      id: created.id,
      body: created,
      options: { headers: { 'If-Match': 'W/"1"' } },
    }),
  );
  check(code === 412, `status ${code}`);
  return '412';
});

await step('delete', async () => {
  const created = await create();
  await client.delete({ resourceType: 'MedicationRequest', id: created.id });
  const code = await status(client.read({ resourceType: 'MedicationRequest', id: created.id }));
  check(code === 410, `read after delete: ${code}`);
  return '410 after delete';
});

await step('transaction', async () => {
  const body = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [0, 1].map(() => ({
      fullUrl: `urn:uuid:${randomUUID()}`,
      resource: newOrder(),
      request: { method: 'POST', url: 'MedicationRequest' },
    })),
  };
  const result = isResource(await client.transaction({ body }), 'Bundle');
  check(result.type === 'transaction-response', `type ${result.type}`);
  check(result.entry.every((e) => e.response.status.startsWith('201')), 'not all created');
  return `${result.entry.length} created`;
});

await step('search-paging-both-ways', async () => {
  for (let i = 0; i < 5; i += 1) await create();
  // POST [type]/_search (http.html#search), then the links
  const first = isResource(
    await client.search({
      resourceType: 'MedicationRequest',
      searchParams: { patient, _count: 2 },
      options: { postSearch: true },
    }),
    'Bundle',
  );
  check(first.total >= 5, `total ${first.total}`);
  const seen = new Set(first.entry.map((e) => e.resource.id));
  let page = first;
  let second;
  while (client.nextPage({ bundle: page })) {
    page = isResource(await client.nextPage({ bundle: page }), 'Bundle');
    second ??= page;
    page.entry.forEach((e) => seen.add(e.resource.id));
  }
  check(seen.size >= 5, `saw ${seen.size}`);
  const back = isResource(await client.prevPage({ bundle: second }), 'Bundle');
  const ids = (b) => b.entry.map((e) => e.resource.id).join(',');
  check(ids(back) === ids(first), `previous ${ids(back)} != ${ids(first)}`);
  return `${seen.size} found`;
});

await step('summary-count', async () => {
  const counted = isResource(
    await client.search({ resourceType: 'MedicationRequest', searchParams: { patient, _summary: 'count' } }),
    'Bundle',
  );
  check(counted.total > 0 && !counted.entry, `total ${counted.total}`);
  return `total ${counted.total}`;
});
