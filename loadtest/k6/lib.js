// Shared code of the k6 scenarios. Each script in this folder is one
// scenario of ../scenarios/scenarios.json, the file loadrun reads too, so
// k6 and loadrun apply the same arrival profile and the same thresholds:
//
//   k6 run loadtest/k6/average.js                      (BASE_URL, default http://127.0.0.1:8081)
//   docker compose --profile load up                   (K6_SCENARIO=average)
//
// Every order is followed to its outcome with one GET /orders/{id}?wait=
// request (api/openapi.yaml); saga_completion is the time from the POST
// to the outcome.
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';

const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8081';
// The admin token: ADMIN_TOKEN, else the file ADMIN_TOKEN_FILE names (the
// compose stack's generated token), else make dev's development token.
const ADMIN_TOKEN = __ENV.ADMIN_TOKEN
  || (__ENV.ADMIN_TOKEN_FILE ? open(__ENV.ADMIN_TOKEN_FILE).trim() : 'dev-admin-token');
const TARGETS = {
  orders: [BASE_URL],
  psp: [__ENV.PSP_URL || 'http://127.0.0.1:8090'],
  payments: [__ENV.PAYMENTS_URL || 'http://127.0.0.1:8082'],
  inventory: (__ENV.INVENTORY_URLS || 'http://127.0.0.1:8083,http://127.0.0.1:8084').split(','),
};

// The test cards of psp (api/openapi.yaml, POST /charges).
const GOOD_CARD = '4242424242424242';
const DECLINED_CARD = '4000000000000002';

const sagaCompletion = new Trend('saga_completion', true);
const ordersShed = new Rate('orders_shed');
const ordersFailed = new Rate('orders_failed');
const orderOutcomeOK = new Rate('order_outcome_ok');
const orderTerminal = new Rate('order_terminal');
const declinedConfirmed = new Counter('declined_confirmed');

/**
 * @typedef {{duration: string, target: number}} Stage
 * @typedef {{at: string, target: 'orders'|'payments'|'inventory'|'psp', faults?: Record<string, number>, consumption?: {paused: boolean}}} Fault
 * @typedef {{description: string, executor: 'constant-arrival-rate'|'ramping-arrival-rate', rate?: number, duration?: string,
 *   startRate?: number, stages?: Stage[], preAllocatedVUs: number, maxVUs: number, declined: number, faults?: Fault[],
 *   thresholds: Record<string, Array<string | {threshold: string, abortOnFail?: boolean, delayAbortEval?: string}>>}} Scenario
 */

/**
 * The k6 options of one scenario of scenarios.json. `all` is the parsed
 * file: open() must run in the calling script's init code.
 * @param {Record<string, Scenario>} all
 * @param {string} name
 * @returns {import('k6/options').Options}
 */
export function optionsFor(all, name) {
  const s = all[name];
  if (!s) {
    throw new Error(`no scenario ${name} in scenarios.json`);
  }
  /** @type {import('k6/options').Scenario} */
  let orders;
  if (s.executor === 'constant-arrival-rate') {
    orders = {
      executor: 'constant-arrival-rate', exec: 'placeOrder', rate: s.rate || 1, timeUnit: '1s',
      duration: s.duration || '1m', preAllocatedVUs: s.preAllocatedVUs, maxVUs: s.maxVUs,
      env: { DECLINED: String(s.declined) },
    };
  } else {
    orders = {
      executor: 'ramping-arrival-rate', exec: 'placeOrder', startRate: s.startRate || 0, timeUnit: '1s',
      stages: s.stages || [], preAllocatedVUs: s.preAllocatedVUs, maxVUs: s.maxVUs,
      env: { DECLINED: String(s.declined) },
    };
  }
  /** @type {Record<string, import('k6/options').Scenario>} */
  const scenarios = { [name]: orders }; // k6 tags every sample with scenario=<name>
  if (s.faults && s.faults.length > 0) {
    scenarios.faults = {
      executor: 'per-vu-iterations', exec: 'faultTimeline', vus: 1, iterations: 1,
      maxDuration: '1h', env: { FAULTS: JSON.stringify(s.faults) },
    };
  }
  return {
    scenarios,
    thresholds: s.thresholds,
    // k6's summary: the percentiles the thresholds use.
    summaryTrendStats: ['avg', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
    // The tags k6 puts on its samples, each a label in Prometheus: not
    // "url" (an order id in every GET, so a series per order), nor the
    // connection's details. Requests are told apart by their name tag.
    // (test/tags.test.mjs checks the series stay few, whatever the load.)
    systemTags: ['status', 'method', 'name', 'group', 'check', 'error', 'error_code', 'scenario', 'expected_response'],
  };
}

/** Places one order and follows it to its outcome. */
export function placeOrder() {
  const declined = Math.random() < Number(__ENV.DECLINED || 0);
  const card = declined ? DECLINED_CARD : GOOD_CARD;
  const i = Math.floor(Math.random() * 1000);
  const body = JSON.stringify({
    customer_id: `k6-${i}`,
    items: [{ sku: `SKU-${String(1 + (i % 100)).padStart(4, '0')}`, quantity: 1 + (i % 3) }],
    payment: { card_number: card },
  });
  const sent = Date.now();
  const res = http.post(`${BASE_URL}/orders`, body, {
    headers: { 'Content-Type': 'application/json' },
    tags: { name: 'POST /orders' },
  });
  // 503 overloaded is the suite shedding load on purpose (orders_shed);
  // any other refusal, such as 503 inventory_unavailable from an open
  // breaker, is a failed order (orders_failed). k6's http_req_failed
  // counts both.
  const shed = res.status === 503 && res.json('error.code') === 'overloaded';
  ordersShed.add(shed);
  ordersFailed.add(res.status !== 202 && !shed);
  check(res, { 'POST /orders accepted or shed': (r) => r.status === 202 || shed });
  if (res.status !== 202) {
    return;
  }
  const id = /** @type {string} */ (res.json('order_id'));
  let status = 'PENDING';
  while (status === 'PENDING' && Date.now() - sent < 60000) {
    const got = http.get(`${BASE_URL}/orders/${id}?wait=30s`, {
      tags: { name: 'GET /orders/{id}' },
      timeout: '40s',
    });
    if (got.status !== 200) {
      break;
    }
    status = /** @type {string} */ (got.json('status'));
  }
  const terminal = status === 'CONFIRMED' || status === 'CANCELLED';
  orderTerminal.add(terminal);
  if (!terminal) {
    orderOutcomeOK.add(false);
    return;
  }
  sagaCompletion.add(Date.now() - sent);
  const want = declined ? 'CANCELLED' : 'CONFIRMED';
  if (declined && status === 'CONFIRMED') {
    declinedConfirmed.add(1);
  }
  orderOutcomeOK.add(status === want);
  check(status, { 'order ends as its card says': (s) => s === want });
}

/** Plays the scenario's fault timeline (one VU), then heals what it touched. */
export function faultTimeline() {
  /** @type {Fault[]} */
  const faults = JSON.parse(__ENV.FAULTS || '[]');
  const start = Date.now();
  for (const f of faults) {
    const wait = seconds(f.at) - (Date.now() - start) / 1000;
    if (wait > 0) {
      sleep(wait);
    }
    for (const base of TARGETS[f.target]) {
      if (f.consumption) {
        put(`${base}/admin/consumption`, f.consumption);
      } else {
        put(`${base}/admin/faults`, Object.assign({ latency_ms: 0, error_rate: 0 }, f.faults));
      }
    }
  }
}

/** Switches every fault off on every process the timeline named. */
export function heal() {
  for (const [target, urls] of Object.entries(TARGETS)) {
    for (const base of urls) {
      put(`${base}/admin/faults`, { latency_ms: 0, error_rate: 0 });
      if (target !== 'psp') {
        put(`${base}/admin/consumption`, { paused: false });
      }
    }
  }
}

/**
 * @param {string} url
 * @param {object} body
 */
function put(url, body) {
  const res = http.put(url, JSON.stringify(body), {
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${ADMIN_TOKEN}` },
    tags: { name: 'PUT /admin' },
  });
  check(res, { 'admin PUT answered 200': (r) => r.status === 200 });
}

/**
 * k6's duration strings as the scenarios use them: "90s", "2m", "1h".
 * @param {string} d
 */
function seconds(d) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(d);
  if (!m) {
    throw new Error(`duration ${d}: want a number and ms, s, m or h`);
  }
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[/** @type {'ms'|'s'|'m'|'h'} */ (m[2])];
}
