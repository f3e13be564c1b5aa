// Moderation and administration through the UI. These routes are being
// built: each test probes its route first and skips, saying so, while the
// server answers "no such route" (404/405).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launch, newUser, signup, createRoom, joinViaBrowser, send, shownTexts, until, pageFetch,
  twoInARoom, teardown,
} from './lib.mjs';

/** True when `method path` is not routed by this server build. */
async function notBuilt(page, method, path, body) {
  const r = await pageFetch(page, method, path, body);
  return r.status === 405 || (r.status === 404 && /route/i.test(r.json?.error?.message || ''));
}

function skipIfMissing(t, missing, what) {
  if (!missing) return false;
  console.log(`SKIPPED: ${what} not built`);
  t.skip(`SKIPPED: ${what} not built`);
  return true;
}

describe('moderation and administration', { timeout: 180000 }, () => {
  let server;
  let browser;
  let alice;
  let bob;

  before(async () => {
    ({ server, browser, alice, bob } = await twoInARoom('club', { room: { topic: 'Members only' } }));
  });

  after(() => teardown({ browser, server }));

  it('a message deleted by the room owner disappears for everyone', async (t) => {
    if (skipIfMissing(t, await notBuilt(alice.page, 'DELETE', '/api/rooms/club/messages/999999999'), 'DELETE /api/rooms/{name}/messages/{id}')) return;
    await send(bob.page, 'buy cheap watches');
    await send(bob.page, 'a real message');
    const row = alice.page.locator('#msg-list .msg', { hasText: 'cheap watches' });
    await row.waitFor();
    await row.hover();
    await row.getByRole('button', { name: 'Delete message' }).click();
    await alice.page.locator('#confirm-yes').click();
    for (const u of [alice, bob]) {
      await until(async () => !(await shownTexts(u.page)).includes('buy cheap watches'), 'the message gone');
      assert.ok((await shownTexts(u.page)).includes('a real message'));
    }
  });

  it('the owner changes the topic from the room settings', async (t) => {
    if (skipIfMissing(t, await notBuilt(alice.page, 'PATCH', '/api/rooms/club', {}), 'PATCH /api/rooms/{name}')) return;
    await alice.page.locator('#btn-room-settings').click();
    await alice.page.locator('#room-dlg-body [name=topic]').fill('Bring snacks');
    await alice.page.getByRole('button', { name: 'Save changes' }).click();
    await alice.page.keyboard.press('Escape');
    await alice.page.locator('#room-topic', { hasText: 'Bring snacks' }).waitFor();
    await bob.page.locator('#room-topic', { hasText: 'Bring snacks' }).waitFor();
  });

  it('a banned member loses the room and cannot join again until unbanned', async (t) => {
    if (skipIfMissing(t, await notBuilt(alice.page, 'GET', '/api/rooms/club/bans'), 'GET /api/rooms/{name}/bans')) return;
    const a = alice.page;
    await a.locator('#btn-room-settings').click();
    const row = a.locator('#room-dlg-body .member-row', { hasText: 'bob' });
    await row.getByRole('button', { name: 'Ban' }).click();
    await a.locator('#confirm-yes').click();
    await bob.page.locator('#sidebar .nav-item[data-room="club"]').waitFor({ state: 'detached' });
    await a.locator('#room-dlg-body .member-row', { hasText: 'bob' }).getByRole('button', { name: 'Unban' }).waitFor();
    // Bob cannot come back while banned.
    const sent = await bob.page.evaluate(() => new Promise((ok) => {
      const ws = new WebSocket(`wss://${location.host}/ws`);
      ws.onopen = () => ws.send(JSON.stringify({ type: 'join', room: 'club' }));
      ws.onmessage = (e) => { const f = JSON.parse(e.data); if (f.type === 'joined' || f.type === 'error') { ws.close(); ok(f.type); } };
    }));
    assert.equal(sent, 'error');
    await a.locator('#room-dlg-body .member-row', { hasText: 'bob' }).getByRole('button', { name: 'Unban' }).click();
    await a.keyboard.press('Escape');
    await joinViaBrowser(bob.page, 'club');
  });

  it('the administrator sees the server overview and the people on it', async (t) => {
    if (skipIfMissing(t, await notBuilt(alice.page, 'GET', '/api/admin/overview'), 'GET /api/admin/overview')) return;
    const a = alice.page;
    await a.locator('#btn-admin').click();
    await a.locator('#admin-body .stat', { hasText: 'People' }).waitFor();
    assert.match(await a.locator('#admin-body .stat', { hasText: 'People' }).textContent(), /2/);
    await a.locator('#dlg-admin [data-tab=users]').click();
    await a.locator('#admin-body .member-row', { hasText: 'bob' }).waitFor();
    await a.keyboard.press('Escape');
    // Not for everyone: bob gets no admin button and the API refuses him.
    assert.equal(await bob.page.locator('#btn-admin').isVisible(), false);
    assert.equal((await pageFetch(bob.page, 'GET', '/api/admin/overview')).status, 403);
  });

  it('an invitation link signs someone up on an invitation-only server', async (t) => {
    if (skipIfMissing(t, await notBuilt(alice.page, 'GET', '/api/admin/invites'), 'GET /api/admin/invites')) return;
    const a = alice.page;
    await a.locator('#btn-admin').click();
    await a.locator('#dlg-admin [data-tab=signup]').click();
    await a.locator('#admin-body input[name=signup][value=invite]').check();
    await a.locator('#dlg-admin .toast, #toasts .toast', { hasText: 'saved' }).first().waitFor();
    await a.getByRole('button', { name: 'New invitation link' }).click();
    const link = await a.locator('#admin-body input.link').first().inputValue();
    assert.match(link, /^https:\/\/127\.0\.0\.1:\d+\/\?invite=\w+/);
    await a.keyboard.press('Escape');

    // Without the link, signing up is refused with a clear message.
    const stranger = await newUser(browser, server);
    await stranger.page.locator('#tab-signup').click();
    await stranger.page.locator('#invite-field').waitFor();
    await stranger.page.locator('#auth-form [name=username]').fill('stranger');
    await stranger.page.locator('#auth-form [name=password]').fill('long enough pass');
    await stranger.page.locator('#auth-submit').click();
    await stranger.page.locator('#auth-error', { hasText: /invitation/i }).waitFor();
    await stranger.context.close();

    // With it, the code is filled in and the account is made.
    const dave = await newUser(browser, server);
    await dave.page.goto(link);
    // The page's script switches to sign-up once it has read the link: wait for it.
    await dave.page.locator('#tab-signup[aria-selected=true]').waitFor();
    assert.equal(await dave.page.locator('#auth-form [name=invite]').inputValue(), link.split('invite=')[1]);
    await dave.page.locator('#auth-form [name=username]').fill('dave');
    await dave.page.locator('#auth-form [name=password]').fill('long enough pass');
    await dave.page.locator('#auth-submit').click();
    await dave.page.locator('#me-name', { hasText: 'dave' }).waitFor();
    assert.deepEqual(dave.problems, []);
    await dave.context.close();
    assert.equal((await pageFetch(a, 'PUT', '/api/admin/settings', { signup: 'open' })).status, 200);
  });
});
