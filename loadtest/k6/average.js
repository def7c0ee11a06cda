// k6 scenario "average" of ../scenarios/scenarios.json (its description,
// arrival profile and thresholds live there, shared with loadrun:
// make load SCENARIO=average).
import { optionsFor, placeOrder } from './lib.js';

export const options = optionsFor(JSON.parse(open('../scenarios/scenarios.json')), 'average');

export { placeOrder };
