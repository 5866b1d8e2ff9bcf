import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ajv } from 'ajv';
import type { HotRoute } from './hot-routes.ts';
import { createJsonServer } from './json-server.ts';
import { wire } from './testing/wire.ts';

/**
 * A server whose hot route `/things` has a bug on its first request only (`buggy` gets the call count):
 * that request must get a 500 JSON answer, logged, and the next one the hot route's own answer.
 */
async function checkFirstRequestBugIsA500(buggy: (calls: () => number) => Partial<HotRoute>) {
  const logged: unknown[] = [];
  let calls = 0;
  const app = createJsonServer({
    bodyBytesMax: 1024,
    token: undefined,
    contractHint: 'see the test',
    errorLog: { error: (obj) => logged.push(obj) },
    hotRoutes: [
      {
        url: '/things',
        bodyBytesMax: 1024,
        validate: new Ajv().compile({ type: 'object' }),
        ready: () => true,
        run: () => Promise.resolve('{"ok":true}'),
        ...buggy(() => calls++),
      },
    ],
  });
  app.post('/things', async () => ({ ok: 'from fastify' }));
  const send = await wire(app);
  try {
    const broken = await send({ method: 'POST', url: '/things', payload: {} });
    assert.equal(broken.statusCode, 500);
    assert.equal(broken.json().error, 'internal');
    assert.equal(logged.length, 1, 'the bug is logged');
    const next = await send({ method: 'POST', url: '/things', payload: {} });
    assert.equal(next.statusCode, 200);
    assert.equal(next.body, '{"ok":true}', 'answered by the hot route again');
  } finally {
    await app.close();
  }
}

test('a hot route whose run throws instead of rejecting gets a 500 JSON answer, and the server lives on', async () => {
  await checkFirstRequestBugIsA500((calls) => ({
    run: () => {
      if (calls() === 0) throw new Error('a synchronous bug');
      return Promise.resolve('{"ok":true}');
    },
  }));
});

test('a hot route whose parseFast throws gets a 500 JSON answer, and the server lives on', async () => {
  await checkFirstRequestBugIsA500((calls) => ({
    parseFast: () => {
      if (calls() === 0) throw new Error('a parser bug');
      return undefined;
    },
  }));
});
