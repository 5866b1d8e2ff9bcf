#!/usr/bin/env node
// Builds native/*.c into one addon, build/engram-native.node (or `--out <file>`), with the C compiler and
// Node's own headers: no node-gyp, no download. Run by `npm install` (postinstall) and
// `npm run build:native`.
// Without a compiler it says so and exits 0: Engram then does without it (src/native/addon.ts): it reads
// snapshots instead of mapping them and checksums log groups in JS, slower but the same bytes.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sources = ['addon.c', 'file-mapping.c', 'log-seal.c'].map((file) => path.join(root, 'native', file));
const outAt = process.argv.indexOf('--out');
const output =
  outAt > 0 ? path.resolve(process.argv[outAt + 1]) : path.join(root, 'build', 'engram-native.node');
const strict = process.argv.includes('--strict');
const candidates = [
  path.resolve(path.dirname(process.execPath), '..', 'include', 'node'),
  '/usr/include/node',
  '/usr/include/nodejs',
];
const headers = candidates.find((dir) => existsSync(path.join(dir, 'node_api.h')));
const compiler = process.env.CC ?? 'cc';

function giveUp(reason) {
  const message = `engram: native addon not built: ${reason}. Engram will read snapshots instead of mapping them (slower restarts of large stores) and checksum its log in JS (slower writes).`;
  console.warn(message);
  process.exit(strict ? 1 : 0);
}

if (process.platform !== 'linux') giveUp(`the addon is built for Linux only (this is ${process.platform})`);
if (!headers) giveUp(`node_api.h not found in ${candidates.join(', ')}`);
mkdirSync(path.dirname(output), { recursive: true });
const args = [
  '-O2',
  '-Wall',
  '-Wextra',
  '-Werror',
  '-shared',
  '-fPIC',
  `-I${headers}`,
  ...sources,
  '-o',
  output,
];
const built = spawnSync(compiler, args, { stdio: ['ignore', 'inherit', 'inherit'] });
if (built.error)
  giveUp(`${compiler} could not be run (${built.error.message}); install a C compiler (apt-get install gcc)`);
if (built.status !== 0) giveUp(`${compiler} ${args.join(' ')} exited with ${built.status}`);
console.log(`engram: built ${output}`);
