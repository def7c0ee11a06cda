// k6 scenario "stress" of ../scenarios/scenarios.json (its description,
// arrival profile and thresholds live there, shared with loadrun:
// make load SCENARIO=stress).
import { optionsFor, placeOrder } from './lib.js';

export const options = optionsFor(JSON.parse(open('../scenarios/scenarios.json')), 'stress');

export { placeOrder };
