import { register } from 'node:module';

register('./k6-loader.mjs', import.meta.url);
