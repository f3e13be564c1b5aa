// The server stops (SIGTERM) and comes back on the same port and data while
// a user keeps sending: every message shows exactly once, in order, for both.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launch, newUser, reopen, signup, createRoom, joinViaBrowser, openRoom, send, shownTexts, until, pageFetch, sleep,
  twoInARoom, teardown,
} from './lib.mjs';

describe('reconnect', { timeout: 180000 }, () => {
  let server;
  let browser;
  let alice;
  let bob;

  before(async () => {
    ({ server, browser, alice, bob } = await twoInARoom('general'));
  });

  after(() => teardown({ browser, server }));

  const pending = (u) => u.page.locator('#pending-list .msg').count();

  it('queues messages while the server is down and delivers each once, in order', async () => {
    await send(alice.page, 'before 1');
    await send(bob.page, 'before 2');
    for (const u of [alice, bob]) await until(async () => (await shownTexts(u.page)).length === 2, 'two messages before the restart');

    // One more goes out right as the server shuts down: it may or may not be stored.
    await send(alice.page, 'racing the shutdown');
    await server.stop();

    const banner = alice.page.locator('#banner');
    await banner.filter({ hasText: /Reconnecting|Connection lost/ }).waitFor({ timeout: 10000 });
    assert.equal(await banner.getAttribute('role'), 'status');

    for (const text of ['while down 1', 'while down 2', 'while down 3']) {
      await send(alice.page, text);
      await sleep(200);
    }
    await send(bob.page, 'bob while down');
    assert.ok((await pending(alice)) >= 3, 'alice\'s messages wait as pending');
    assert.equal(await pending(bob), 1);
    assert.match(await alice.page.locator('#pending-list').textContent(), /Waiting for connection|Sending/);
    await sleep(1500);

    await server.start();
    // Bob's page hears the network is back: it reconnects at once.
    await bob.page.evaluate(() => dispatchEvent(new Event('online')));

    const all = ['before 1', 'before 2', 'racing the shutdown', 'while down 1', 'while down 2', 'while down 3', 'bob while down'];
    for (const u of [alice, bob]) {
      await until(async () => (await pending(u)) === 0, 'pending messages sent', 45000);
      await until(async () => {
        const shown = await shownTexts(u.page);
        return all.every((t) => shown.includes(t)) && shown;
      }, 'every message shown', 20000);
    }
    await alice.page.locator('#banner', { hasText: 'Back online' }).waitFor({ timeout: 5000 }).catch(() => {});

    await send(alice.page, 'after 1');
    await send(bob.page, 'after 2');
    all.push('after 1', 'after 2');

    // The server's history is the truth: both pages show exactly it, in id order.
    const { json } = await pageFetch(alice.page, 'GET', '/api/rooms/general/messages?limit=100');
    await until(async () => {
      for (const u of [alice, bob]) if ((await shownTexts(u.page)).length < all.length) return false;
      return true;
    }, 'the messages after the restart');
    const truth = (await pageFetch(alice.page, 'GET', '/api/rooms/general/messages?limit=100')).json.messages;
    const ids = truth.map((m) => m.id);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'ids ascend');
    const texts = truth.map((m) => m.text);
    for (const t of all) assert.equal(texts.filter((x) => x === t).length, 1, `"${t}" stored exactly once`);
    for (const u of [alice, bob]) {
      assert.deepEqual(await shownTexts(u.page), texts, 'page shows the server history, once each, in order');
      assert.equal(await pending(u), 0);
      assert.deepEqual(u.problems, []);
    }
    const order = ['while down 1', 'while down 2', 'while down 3'].map((t) => texts.indexOf(t));
    assert.deepEqual(order, [...order].sort((a, b) => a - b), 'queued messages keep the order they were typed in');
    assert.ok(json.messages.length >= all.length - 2);
  });

  it('messages missed while the page was closed are synced and counted as unread', async () => {
    await createRoom(bob.page, 'random');
    await joinViaBrowser(alice.page, 'random');
    await openRoom(alice.page, 'general');
    const url = alice.page.url();
    await alice.page.close();
    for (const t of ['missed 1', 'missed 2', 'missed 3']) await send(bob.page, t);
    await until(async () => (await bob.page.locator('#pending-list .msg').count()) === 0 && (await shownTexts(bob.page)).length === 3, 'bob\'s messages stored');

    const p = await reopen(alice, url);
    await p.locator('#room-name', { hasText: 'general' }).waitFor();
    const badge = p.locator('#sidebar .nav-item[data-room="random"] .badge');
    await until(async () => (await badge.count()) && (await badge.textContent()) === '3', 'three unread in #random');
    assert.match(await p.title(), /^\(3\)/, 'the unread count is in the title');
    await openRoom(p, 'random');
    assert.deepEqual(await shownTexts(p), ['missed 1', 'missed 2', 'missed 3']);
    await openRoom(p, 'general');
    await openRoom(bob.page, 'general');
    assert.deepEqual(alice.problems, []);
  });

  it('a second restart in a row is survived too', async () => {
    await server.stop();
    await send(alice.page, 'second outage');
    await sleep(500);
    await server.start();
    for (const u of [alice, bob]) {
      await u.page.locator('#msg-list .text', { hasText: 'second outage' }).waitFor({ timeout: 45000 });
      const shown = await shownTexts(u.page);
      assert.equal(shown.filter((t) => t === 'second outage').length, 1);
      assert.equal(new Set(shown).size, shown.length, 'no duplicates');
    }
  });
});

describe('session and epoch', { timeout: 120000 }, () => {
  let server;
  let browser;
  let alice;

  before(async () => {
    server = await startServer();
    browser = await launch();
    alice = await newUser(browser, server);
    await signup(alice.page, 'alice');
    await alice.page.keyboard.press('Escape');
    await createRoom(alice.page, 'general');
    await send(alice.page, 'one');
    await send(alice.page, 'two');
    await until(async () => (await shownTexts(alice.page)).length === 2, 'two messages');
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    server?.cleanup();
  });

  it('a cursor from another database epoch is dropped and history reloaded', async () => {
    const p = alice.page;
    const state = () => p.evaluate(() => JSON.parse(localStorage.getItem('hearth:alice')));
    const before = await until(async () => { const s = await state(); return s && s.epoch && s.cursor >= 2 && s; }, 'the epoch and cursor remembered');
    await p.evaluate(() => {
      const s = JSON.parse(localStorage.getItem('hearth:alice'));
      s.epoch = 'another-database';
      s.cursor = 999999;
      s.seen = { general: 999999 };
      localStorage.setItem('hearth:alice', JSON.stringify(s));
    });
    await p.reload();
    await p.locator('#msg-list .text', { hasText: 'two' }).waitFor();
    await until(async () => (await state()).epoch === before.epoch, 'the server epoch stored again');
    const after = await state();
    assert.equal(after.cursor, before.cursor, 'cursor reset to the server\'s newest id');
    assert.deepEqual(await shownTexts(p), ['one', 'two']);
    await send(p, 'three');
    await p.locator('#msg-list .text', { hasText: 'three' }).waitFor();
    assert.deepEqual(alice.problems, []);
  });

  it('a refused WebSocket upgrade (401) leads back to the sign-in screen', async () => {
    const p = alice.page;
    await alice.context.clearCookies();
    await server.stop();
    await server.start();
    await p.locator('#auth').waitFor({ state: 'visible', timeout: 45000 });
    assert.match(await p.locator('#auth-error').textContent(), /session|log in/i);
  });
});
