// k6 scenario "breakpoint" of ../scenarios/scenarios.json (its description,
// arrival profile and thresholds live there, shared with loadrun:
// make load SCENARIO=breakpoint).
import { optionsFor, placeOrder } from './lib.js';

export const options = optionsFor(JSON.parse(open('../scenarios/scenarios.json')), 'breakpoint');

export { placeOrder };
