// Stand-ins for the k6 modules, so that Node can run the scenario scripts
// (tags.test.mjs): http records every request and answers as the suite
// would; checks, metrics and sleep do nothing.
export const requests = [];

function response(status, body) {
  return {
    status,
    json: (path) => path.split('.').reduce((v, k) => (v == null ? v : v[k]), body),
  };
}

let next = 0;
function answer(method, url) {
  if (method === 'POST' && url.endsWith('/orders')) {
    next++;
    return response(202, { order_id: `01a00000-0000-7000-8000-${String(next).padStart(12, '0')}`, status: 'PENDING' });
  }
  if (method === 'GET' && /\/orders\/[^/?]+/.test(url)) {
    return response(200, { status: 'CONFIRMED' });
  }
  return response(200, {});
}

function record(method, url, params) {
  requests.push({ method, url, params: params || {} });
  return answer(method, url);
}

export const http = {
  get: (url, params) => record('GET', url, params),
  post: (url, _body, params) => record('POST', url, params),
  put: (url, _body, params) => record('PUT', url, params),
};

export function check() { return true; }
export function sleep() {}

class Metric { add() {} }
export class Counter extends Metric {}
export class Rate extends Metric {}
export class Trend extends Metric {}
export class Gauge extends Metric {}
