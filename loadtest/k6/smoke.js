// k6 scenario "smoke" of ../scenarios/scenarios.json (its description,
// arrival profile and thresholds live there, shared with loadrun:
// make load SCENARIO=smoke).
import { optionsFor, placeOrder } from './lib.js';

export const options = optionsFor(JSON.parse(open('../scenarios/scenarios.json')), 'smoke');

export { placeOrder };
