// Sign-up, rooms, chat both ways, privacy of rooms and DMs, and XSS safety,
// with three users in three separate browser contexts.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launch, newUser, signup, createRoom, joinViaBrowser, openRoom, send, shownTexts, until, pageFetch,
} from './lib.mjs';

describe('chat', { timeout: 180000 }, () => {
  let server;
  let browser;
  let alice;
  let bob;
  let carol;

  before(async () => {
    server = await startServer();
    browser = await launch();
    alice = await newUser(browser, server);
    bob = await newUser(browser, server);
    carol = await newUser(browser, server);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    server?.cleanup();
  });

  const noProblems = () => {
    for (const u of [alice, bob, carol]) assert.deepEqual(u.problems, [], 'no page errors, CSP violations or dialogs');
  };

  it('the first sign-up is the administrator and is told so', async () => {
    await signup(alice.page, 'alice');
    const welcome = alice.page.locator('#dlg-welcome');
    await welcome.waitFor({ state: 'visible' });
    assert.match(await welcome.textContent(), /administrator/i);
    await alice.page.keyboard.press('Escape');
    await welcome.waitFor({ state: 'hidden' });
    assert.equal(await alice.page.locator('#me-role').textContent(), 'Administrator');
    assert.ok(await alice.page.locator('#btn-admin').isVisible(), 'admin button shown');

    await signup(bob.page, 'bob');
    await signup(carol.page, 'carol');
    assert.equal(await bob.page.locator('#dlg-welcome').isVisible(), false, 'second user is not told they are admin');
    assert.equal(await bob.page.locator('#btn-admin').isVisible(), false);
    noProblems();
  });

  it('a wrong password is refused with a clear message', async () => {
    const { page, context } = await newUser(browser, server);
    await page.locator('#auth-form [name=username]').fill('alice');
    await page.locator('#auth-form [name=password]').fill('not the password');
    await page.locator('#auth-submit').click();
    await page.locator('#auth-error', { hasText: /wrong username or password/i }).waitFor();
    await context.close();
  });

  it('a room is created, joined from the browser, and both chat both ways', async () => {
    await createRoom(alice.page, 'general', { topic: 'Everything and nothing' });
    await joinViaBrowser(bob.page, 'general');

    // Typing indicator: bob sees alice typing.
    await alice.page.locator('#input').pressSequentially('Hel');
    await bob.page.locator('#typing', { hasText: 'alice is typing' }).waitFor();

    await alice.page.locator('#input').fill('Hello bob!');
    await alice.page.locator('#input').press('Enter');
    await bob.page.locator('#msg-list .msg .text', { hasText: 'Hello bob!' }).waitFor();
    await send(bob.page, 'Hi @alice, good to see you');
    await alice.page.locator('#msg-list .text', { hasText: 'good to see you' }).waitFor();
    // The mention of the current user is highlighted for her, not for him.
    await alice.page.locator('#msg-list .mention.me', { hasText: '@alice' }).waitFor();
    assert.equal(await bob.page.locator('#msg-list .mention.me').count(), 0);

    // Shift+Enter adds a line; Enter sends.
    const input = alice.page.locator('#input');
    await input.fill('line one');
    await input.press('Shift+Enter');
    await input.pressSequentially('line two');
    await input.press('Enter');
    await bob.page.locator('#msg-list .text', { hasText: 'line two' }).waitFor();
    assert.equal(await bob.page.locator('#msg-list .text', { hasText: 'line two' }).textContent(), 'line one\nline two');

    for (const u of [alice, bob]) {
      await until(async () => (await shownTexts(u.page)).length === 3, 'three messages');
      assert.deepEqual(await shownTexts(u.page), ['Hello bob!', 'Hi @alice, good to see you', 'line one\nline two']);
      assert.equal(await u.page.locator('#pending-list .msg').count(), 0, 'nothing left pending');
    }
    // Consecutive messages from one author are grouped; the other author's are not.
    assert.equal(await bob.page.locator('#msg-list .msg.cont').count(), 0);
    noProblems();
  });

  it('unread counts appear for a room that is not open, and clear when opened', async () => {
    await createRoom(alice.page, 'random');
    await joinViaBrowser(bob.page, 'random');
    await openRoom(alice.page, 'general');
    await send(bob.page, 'anyone in random?');
    await send(bob.page, 'hello?');
    const badge = alice.page.locator('#sidebar .nav-item[data-room="random"] .badge');
    await until(async () => (await badge.textContent()) === '2', 'unread badge of 2');
    await openRoom(alice.page, 'random');
    await until(async () => (await badge.count()) === 0, 'badge cleared');
    noProblems();
  });

  it('markup in a message is shown as typed and never runs', async () => {
    await openRoom(alice.page, 'general');
    await openRoom(bob.page, 'general');
    const evil = '<img src=x onerror=alert(1)>';
    const link = 'docs at https://example.com/a?b=1. and javascript:alert(2) <b>bold</b>';
    await send(alice.page, evil);
    await send(alice.page, link);
    for (const u of [alice, bob]) {
      const p = u.page;
      await p.locator('#msg-list .text', { hasText: 'docs at' }).waitFor();
      assert.equal(await p.locator('#msg-list .text', { hasText: 'onerror' }).textContent(), evil);
      assert.equal(await p.locator('#msg-list img, #msg-list b, #msg-list script').count(), 0, 'no element made from message text');
      const a = p.locator('#msg-list .text a');
      assert.equal(await a.count(), 1, 'only the http link is a link');
      assert.equal(await a.getAttribute('href'), 'https://example.com/a?b=1');
      assert.equal(await a.getAttribute('rel'), 'noopener noreferrer');
      assert.equal(await a.getAttribute('target'), '_blank');
    }
    await alice.page.waitForTimeout(300);
    noProblems();
  });

  it('a private room stays invisible to someone who is not in it', async () => {
    await createRoom(alice.page, 'secret', { visibility: 'private', topic: 'shh' });
    await send(alice.page, 'the password is swordfish');
    await alice.page.locator('#msg-list .text', { hasText: 'swordfish' }).waitFor();

    const p = carol.page;
    await p.locator('#btn-browse').click();
    await p.locator('#browse-list .browse-item', { hasText: 'general' }).waitFor();
    const names = await p.locator('#browse-list .browse-item strong').allTextContents();
    assert.ok(names.includes('general') && names.includes('random'), 'public rooms listed');
    assert.ok(!names.includes('secret'), 'private room not listed');
    await p.keyboard.press('Escape');
    assert.equal((await pageFetch(p, 'GET', '/api/rooms/secret')).status, 404);
    assert.equal((await pageFetch(p, 'GET', '/api/rooms/secret/messages')).status, 404);
    assert.equal(await p.locator('#sidebar .nav-item[data-room="secret"]').count(), 0);
    assert.equal(await p.getByText('swordfish').count(), 0);
    // Bob, not a member either, does not see it in his sidebar.
    assert.equal(await bob.page.locator('#sidebar .nav-item[data-room="secret"]').count(), 0);
    noProblems();
  });

  it('a direct message is seen by its two people only', async (t) => {
    const probe = await pageFetch(alice.page, 'GET', '/api/dms');
    if (probe.status === 404) {
      console.log('SKIPPED: /api/dms not built');
      t.skip('SKIPPED: /api/dms not built');
      return;
    }
    await alice.page.locator('#btn-new-dm').click();
    await alice.page.locator('#dm-form [name=user]').fill('bob');
    await alice.page.locator('#dm-form button[type=submit]').click();
    await alice.page.locator('#dlg-dm').waitFor({ state: 'hidden' });
    await alice.page.locator('#room-name', { hasText: 'bob' }).waitFor();
    await send(alice.page, 'psst, bob: cake at five');
    await alice.page.locator('#msg-list .text', { hasText: 'cake at five' }).waitFor();

    const dm = bob.page.locator('#dm-list .nav-item', { hasText: 'alice' });
    await dm.waitFor();
    await dm.click();
    await bob.page.locator('#msg-list .text', { hasText: 'cake at five' }).waitFor();
    await send(bob.page, 'on my way');
    await alice.page.locator('#msg-list .text', { hasText: 'on my way' }).waitFor();

    const list = await pageFetch(carol.page, 'GET', '/api/dms');
    assert.equal(list.status, 200);
    assert.deepEqual(list.json.rooms, [], 'carol has no DMs');
    const name = (await pageFetch(alice.page, 'GET', '/api/dms')).json.rooms[0].name;
    assert.equal((await pageFetch(carol.page, 'GET', `/api/rooms/${encodeURIComponent(name)}/messages`)).status, 404);
    const rooms = (await pageFetch(carol.page, 'GET', '/api/rooms')).json.rooms.map((r) => r.name);
    assert.ok(!rooms.includes(name), 'the DM is not in the room list');
    assert.equal(await carol.page.locator('#dm-list .nav-item').count(), 0);
    assert.equal(await carol.page.getByText('cake at five').count(), 0);
    noProblems();
  });

  it('logging out returns to the sign-in screen and closes the socket', async () => {
    await carol.page.locator('#btn-settings').click();
    await carol.page.locator('#btn-logout').click();
    await carol.page.locator('#auth').waitFor({ state: 'visible' });
    assert.equal((await pageFetch(carol.page, 'GET', '/api/me')).status, 401);
    noProblems();
  });
});
