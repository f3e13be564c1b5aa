// Sends that fail: an error frame with the message's nonce (rate limit)
// shows a retry button; a server that stops answering (SIGSTOP, like Wi-Fi
// that dies silently) is detected, and its messages still land exactly once.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launch, newUser, signup, createRoom, joinViaBrowser, send, shownTexts, until, sleep,
  twoInARoom, teardown,
} from './lib.mjs';

describe('send failures', { timeout: 180000 }, () => {
  let server;
  let browser;
  let alice;
  let bob;

  before(async () => {
    ({ server, browser, alice, bob } = await twoInARoom('general', { server: { args: ['--rate', '1', '--burst', '2'] } }));
  });

  after(async () => {
    if (server?.proc) try { server.proc.kill('SIGCONT'); } catch { /* gone */ }
    await teardown({ browser, server });
  });

  it('a rate-limited message shows a retry button, and the retry sends it once', async () => {
    await sleep(2100); // a full bucket
    const p = alice.page;
    for (const t of ['burst 1', 'burst 2', 'burst 3', 'burst 4']) await send(p, t);
    const failed = p.locator('#pending-list .msg.failed');
    await until(async () => (await failed.count()) >= 1, 'a failed message');
    assert.match(await failed.first().textContent(), /too many/i);
    await sleep(2100);
    while ((await failed.count()) > 0) {
      await failed.first().getByRole('button', { name: 'Retry' }).click();
      await sleep(1100);
    }
    const want = ['burst 1', 'burst 2', 'burst 3', 'burst 4'];
    for (const u of [alice, bob]) {
      await until(async () => { const s = await shownTexts(u.page); return want.every((t) => s.includes(t)); }, 'every burst message');
      const s = await shownTexts(u.page);
      for (const t of want) assert.equal(s.filter((x) => x === t).length, 1, `"${t}" once`);
    }
    assert.equal(await p.locator('#pending-list .msg').count(), 0);
    assert.deepEqual(alice.problems, []);
  });

  it('a frozen server is detected; the message lands once when it wakes up', async () => {
    const p = alice.page;
    await sleep(2100);
    server.proc.kill('SIGSTOP');
    try {
      await send(p, 'into the void');
      // No answer within the send timeout: marked failed, with a retry button.
      await p.locator('#pending-list .msg.failed', { hasText: 'into the void' }).waitFor({ timeout: 20000 });
      // The liveness probe gets no answer either: the socket is dropped and the banner says so.
      await p.locator('#banner', { hasText: /Reconnecting|Connection lost/ }).waitFor({ timeout: 20000 });
      await p.locator('#pending-list .msg', { hasText: 'into the void' }).waitFor();
    } finally {
      server.proc.kill('SIGCONT');
    }
    for (const u of [alice, bob]) {
      await u.page.locator('#msg-list .text', { hasText: 'into the void' }).waitFor({ timeout: 45000 });
    }
    await until(async () => (await p.locator('#pending-list .msg').count()) === 0, 'nothing pending', 20000);
    await sleep(1000);
    for (const u of [alice, bob]) {
      const s = await shownTexts(u.page);
      assert.equal(s.filter((x) => x === 'into the void').length, 1, 'exactly once');
      assert.deepEqual(u.problems, []);
    }
  });
});
