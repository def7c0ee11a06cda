// k6 scenario "chaos" of ../scenarios/scenarios.json (its description,
// arrival profile and thresholds live there, shared with loadrun:
// make load SCENARIO=chaos).
import { optionsFor, placeOrder, faultTimeline, heal } from './lib.js';

export const options = optionsFor(JSON.parse(open('../scenarios/scenarios.json')), 'chaos');

export { placeOrder, faultTimeline };

// Whatever happened, leave no fault switched on.
export function teardown() {
  heal();
}
