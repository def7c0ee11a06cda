// k6 scenario "spike" of ../scenarios/scenarios.json (its description,
// arrival profile and thresholds live there, shared with loadrun:
// make load SCENARIO=spike).
import { optionsFor, placeOrder } from './lib.js';

export const options = optionsFor(JSON.parse(open('../scenarios/scenarios.json')), 'spike');

export { placeOrder };
