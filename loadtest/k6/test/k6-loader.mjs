// Module hooks that point the k6 imports of the scenario scripts at
// k6-stubs.mjs (node --import ./test/k6-register.mjs).
const stubs = new URL('./k6-stubs.mjs', import.meta.url).href;
const shapes = {
  'k6': 'export { check, sleep } from "STUBS";',
  'k6/http': 'import { http } from "STUBS"; export default http;',
  'k6/metrics': 'export { Counter, Rate, Trend, Gauge } from "STUBS";',
};

export async function resolve(specifier, context, next) {
  if (specifier in shapes) {
    return { url: `k6stub:${specifier}`, shortCircuit: true };
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (url.startsWith('k6stub:')) {
    return { format: 'module', source: shapes[url.slice('k6stub:'.length)].replace('STUBS', stubs), shortCircuit: true };
  }
  return next(url, context);
}
