// History: more than two pages of messages; scrolling up loads older ones.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launch, newUser, signup, createRoom, joinViaBrowser, shownTexts, until,
  twoInARoom, teardown,
} from './lib.mjs';

const N = 130;

describe('history', { timeout: 180000 }, () => {
  let server;
  let browser;
  let alice;
  let bob;

  before(async () => {
    ({ server, browser, alice, bob } = await twoInARoom('general'));
  });

  after(() => teardown({ browser, server }));

  it('loads older messages as you scroll up', async () => {
    // Bob seeds N messages over a WebSocket of his own, paced under the rate limit.
    await bob.page.evaluate(async (n) => {
      const ws = new WebSocket(`wss://${location.host}/ws`);
      let got = 0;
      const done = new Promise((ok, fail) => {
        ws.onmessage = (e) => {
          const f = JSON.parse(e.data);
          if (f.type === 'error') fail(new Error(f.code));
          if (f.type === 'message' && String(f.nonce).startsWith('seed-') && ++got === n) ok();
        };
        setTimeout(() => fail(new Error(`only ${got} of ${n} confirmed`)), 60000);
      });
      await new Promise((ok) => { ws.onopen = ok; });
      for (let i = 1; i <= n; i++) {
        ws.send(JSON.stringify({ type: 'send', room: 'general', text: `seed ${i}`, nonce: `seed-${i}` }));
        if (i % 15 === 0) await new Promise((ok) => setTimeout(ok, 1000));
      }
      await done;
      ws.close();
    }, N);

    // Alice reloads: she gets the newest page only.
    const p = alice.page;
    await p.reload();
    await p.locator('#room-name', { hasText: 'general' }).waitFor();
    await p.locator('#msg-list .text', { hasText: `seed ${N}` }).waitFor();
    const first = await shownTexts(p);
    assert.ok(first.length < N, `only a page at first (${first.length})`);
    assert.equal(first[first.length - 1], `seed ${N}`);
    assert.equal(await p.locator('#msg-list .text', { hasText: /^seed 1$/ }).count(), 0);

    // Scroll up until the beginning of the room shows.
    await until(async () => {
      await p.locator('#scroller').evaluate((s) => { s.scrollTop = 0; s.dispatchEvent(new Event('scroll')); });
      return (await p.locator('#history-top .beginning').count()) > 0;
    }, 'the beginning of the room', 30000);
    const texts = await shownTexts(p);
    const want = Array.from({ length: N }, (_, i) => `seed ${i + 1}`);
    assert.deepEqual(texts, want, 'every message once, oldest first');
    assert.ok((await p.locator('#msg-list .day').count()) >= 1, 'a day separator');
    assert.ok((await p.locator('#msg-list .msg.cont').count()) > N / 2, 'one author\'s run is grouped');
    assert.deepEqual(alice.problems, []);
  });

  it('keeps the reading position when older messages load', async () => {
    const p = alice.page;
    await p.reload();
    await p.locator('#msg-list .text', { hasText: `seed ${N}` }).waitFor();
    const oldest = (await shownTexts(p))[0];
    const row = p.locator('#msg-list .msg', { has: p.locator('.text', { hasText: new RegExp(`^${oldest}$`) }) });
    await p.locator('#scroller').evaluate((s) => { s.scrollTop = 0; });
    await until(async () => (await shownTexts(p))[0] !== oldest, 'an older page');
    // The message that was at the top is still in view, not thrown off-screen.
    const box = await row.boundingBox();
    const view = await p.locator('#scroller').boundingBox();
    assert.ok(box.y > view.y - box.height && box.y < view.y + view.height, 'the old top message stays in view');
  });
});
