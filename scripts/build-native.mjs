#!/usr/bin/env node
// Builds native/file-mapping.c into build/engram-file-mapping.node (or `--out <file>`) with the C compiler
// and Node's own headers: no node-gyp, no download. Run by `npm install` (postinstall) and
// `npm run build:native`.
// Without a compiler it says so and exits 0: Engram then reads snapshots instead of mapping them
// (src/storage/file-mapping.ts), slower on a large store but the same bytes.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const source = path.join(root, 'native', 'file-mapping.c');
const outAt = process.argv.indexOf('--out');
const output =
  outAt > 0 ? path.resolve(process.argv[outAt + 1]) : path.join(root, 'build', 'engram-file-mapping.node');
const strict = process.argv.includes('--strict');
const candidates = [
  path.resolve(path.dirname(process.execPath), '..', 'include', 'node'),
  '/usr/include/node',
  '/usr/include/nodejs',
];
const headers = candidates.find((dir) => existsSync(path.join(dir, 'node_api.h')));
const compiler = process.env.CC ?? 'cc';

function giveUp(reason) {
  const message = `engram: snapshot file mapping not built: ${reason}. Engram will read snapshots instead (slower restarts of large stores).`;
  console.warn(message);
  process.exit(strict ? 1 : 0);
}

if (process.platform !== 'linux') giveUp(`mapping is built for Linux only (this is ${process.platform})`);
if (!headers) giveUp(`node_api.h not found in ${candidates.join(', ')}`);
mkdirSync(path.dirname(output), { recursive: true });
const args = ['-O2', '-Wall', '-Wextra', '-Werror', '-shared', '-fPIC', `-I${headers}`, source, '-o', output];
const built = spawnSync(compiler, args, { stdio: ['ignore', 'inherit', 'inherit'] });
if (built.error)
  giveUp(`${compiler} could not be run (${built.error.message}); install a C compiler (apt-get install gcc)`);
if (built.status !== 0) giveUp(`${compiler} ${args.join(' ')} exited with ${built.status}`);
console.log(`engram: built ${output}`);
