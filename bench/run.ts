/**
 * Runs every benchmark in bench/ one after another (each prints its own ratios against a same-run baseline); not the
 * soak (an hour: `npm run soak`).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const only = process.argv.slice(2);
let failed = 0;
for (const file of readdirSync(here).filter((f) => f.endsWith('.js') && !['run.js', 'cpu.js', 'soak.js'].includes(f)).sort()) {
  if (only.length > 0 && !only.some((name) => file.startsWith(name))) continue;
  console.log(`\n=== ${file}`);
  const result = spawnSync(process.execPath, [here + file], { stdio: 'inherit' });
  if (result.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
