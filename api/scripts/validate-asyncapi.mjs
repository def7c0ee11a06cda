// Validates an AsyncAPI document with @asyncapi/parser, the parser and
// Spectral rules `asyncapi validate` runs (the AsyncAPI CLI itself pulls
// in half a gigabyte of Studio and Next.js). Errors and warnings fail;
// information and hints are printed.
import { Parser, fromFile } from '@asyncapi/parser';

const file = process.argv[2];
const { document, diagnostics } = await fromFile(new Parser(), file).parse();
const names = ['error', 'warning', 'info', 'hint'];
let failed = !document;
for (const d of diagnostics) {
  console.log(`${file}: ${names[d.severity]} ${d.code} at ${d.path.join('.') || '(root)'}: ${d.message}`);
  failed ||= d.severity <= 1;
}
if (failed) {
  console.error(`${file}: not a valid AsyncAPI document`);
  process.exit(1);
}
console.log(`${file}: valid AsyncAPI ${document.version()}`);
