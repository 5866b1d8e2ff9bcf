import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nativeAddon } from './addon.ts';

const buildScript = fileURLToPath(new URL('../../scripts/build-native.mjs', import.meta.url));

test('npm install built the addon wherever this machine can build it, with every function in it', async () => {
  // The install's own script, strict and into a temp file: it succeeds exactly where a compiler and
  // Node's headers are found, and then the addon npm install built must be there and load.
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'engram-addon-'));
  try {
    const build = spawnSync(
      process.execPath,
      [buildScript, '--strict', '--out', path.join(dir, 'probe.node')],
      {
        encoding: 'utf8',
      },
    );
    const status = nativeAddon();
    if (build.status !== 0) {
      assert.equal(
        status.available,
        false,
        `the build failed here (${build.stderr.trim()}), yet an addon loads`,
      );
      return;
    }
    assert.ok(status.available, !status.available ? status.reason : '');
    for (const fn of ['map', 'sealGroup', 'sealGroupTable', 'sealKind'] as const)
      assert.equal(typeof status.addon[fn], 'function', fn);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('without a C compiler the build says why, exits 0 for npm install, and 1 when strict', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'engram-addon-'));
  try {
    const env = { ...process.env, CC: path.join(dir, 'no-such-cc') };
    for (const [args, status] of [
      [[], 0],
      [['--strict'], 1],
    ] as const) {
      const build = spawnSync(process.execPath, [buildScript, ...args, '--out', path.join(dir, 'x.node')], {
        encoding: 'utf8',
        env,
      });
      assert.equal(build.status, status, build.stderr);
      assert.match(
        build.stderr,
        /native addon not built: .*no-such-cc could not be run .*apt-get install gcc/,
      );
      assert.match(build.stderr, /checksum its log in JS/);
    }
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
