// The k6 scenarios export every HTTP sample to Prometheus (the compose
// stack's k6 service: experimental-prometheus-rw), one series per
// distinct set of tags. A tag whose value grows with the orders (the URL,
// with its order id) makes a series per order: the average scenario alone
// would write hundreds of thousands into a Prometheus capped at 288 MB.
//
// This runs every scenario script under Node with k6's modules stubbed,
// places 300 orders through it, and computes the tags k6 would put on
// each request's samples (its system tags as the script's options leave
// them, plus the request's own tags and --tag testid): every request must
// be named, no URL may be exported, and the label sets must not grow with
// the number of orders.
//
//   node --import ./test/k6-register.mjs test/tags.test.mjs     (make k6-check)
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { requests } from './k6-stubs.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

// k6's default system tags (https://grafana.com/docs/k6/latest/using-k6/k6-options/reference/#system-tags).
const defaultSystemTags = ['proto', 'subproto', 'status', 'method', 'url', 'name', 'group', 'check', 'error', 'error_code',
  'tls_version', 'scenario', 'service', 'expected_response'];
// The system tags whose value depends on the request, as k6 sets them.
const perRequest = { method: (r) => r.method, url: (r) => r.url, name: (r) => r.params.tags?.name ?? r.url, status: () => '200' };

globalThis.__ENV = {};
globalThis.open = (path) => readFileSync(join(root, path), 'utf8');

let failures = 0;
function fail(msg) {
  failures++;
  console.error(`FAIL ${msg}`);
}

const orders = 300;
for (const file of readdirSync(root).filter((f) => f.endsWith('.js') && f !== 'lib.js')) {
  requests.length = 0;
  const script = await import(join(root, file));
  const options = script.options || {};
  const systemTags = options.systemTags || defaultSystemTags;
  if (systemTags.includes('url')) {
    fail(`${file}: options.systemTags exports "url": a series per order id (set systemTags without it)`);
  }
  for (let i = 0; i < orders; i++) {
    script.placeOrder();
  }
  if (script.faultTimeline) {
    script.faultTimeline();
  }
  const labelSets = new Set();
  for (const r of requests) {
    if (!r.params.tags?.name) {
      fail(`${file}: ${r.method} ${r.url} has no name tag: k6 names it by its URL`);
    }
    const labels = {};
    for (const t of systemTags) {
      if (t in perRequest) {
        labels[t] = perRequest[t](r);
      }
    }
    Object.assign(labels, r.params.tags, { testid: 'compose' });
    labelSets.add(JSON.stringify(Object.entries(labels).sort()));
  }
  if (labelSets.size > 10) {
    fail(`${file}: ${labelSets.size} distinct tag sets on http samples for ${orders} orders (want a handful, whatever the load)`);
  }
  console.log(`${file}: ${requests.length} requests, ${labelSets.size} tag sets`);
}
if (failures > 0) {
  process.exit(1);
}
