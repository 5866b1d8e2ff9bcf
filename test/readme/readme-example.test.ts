import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';

// The README's example is the first code a user copies: it must run as written.
test('the README example runs as written', async () => {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  const match = readme.match(/```ts\n([\s\S]*?)```/);
  assert.ok(match, 'README has a ts example');
  const dir = await mkdtemp(path.join(tmpdir(), 'engram-readme-'));
  const root = path.resolve(new URL('../..', import.meta.url).pathname);
  const code = match[1]
    .replace("'./src/index.ts'", `'${pathToFileURL(path.join(root, 'src/index.ts')).href}'`)
    .replace("'./bank-data'", JSON.stringify(path.join(dir, 'bank')))
    .concat('\nexport { balance };\n');
  const file = path.join(dir, 'example.mts');
  await writeFile(file, code);
  try {
    const mod = await import(pathToFileURL(file).href);
    assert.equal(mod.balance, 500);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
