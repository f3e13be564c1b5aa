// Makes docs/screenshots/{desktop,phone}-{light,dark}.png: a room with a
// conversation, seen by alice. `node screenshots.mjs [outdir] [--extra]`
// (--extra also shoots the sign-in, drawer, dialogs and admin screens).

import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  REPO, startServer, launch, newUser, signup, login, createRoom, joinViaBrowser, openRoom, send, sleep,
} from './lib.mjs';

const args = process.argv.slice(2);
const extra = args.includes('--extra');
const out = resolve(args.find((a) => !a.startsWith('--')) || join(REPO, 'docs/screenshots'));
mkdirSync(out, { recursive: true });

const server = await startServer();
const browser = await launch();
try {
  const alice = await newUser(browser, server);
  const bob = await newUser(browser, server);
  const carol = await newUser(browser, server);
  await signup(alice.page, 'alice');
  if (extra) await alice.page.screenshot({ path: join(out, 'welcome-admin.png') });
  await alice.page.keyboard.press('Escape');
  await signup(bob.page, 'bob');
  await signup(carol.page, 'carol');

  await createRoom(alice.page, 'general', { topic: 'Everything about the house, the garden and the week ahead' });
  await createRoom(alice.page, 'garden', { topic: 'Seeds, soil and slugs' });
  await createRoom(alice.page, 'family', { visibility: 'private', topic: 'Just us' });
  await createRoom(bob.page, 'music', { topic: 'What is on the record player' });
  await createRoom(carol.page, 'recipes');
  for (const u of [bob, carol]) await joinViaBrowser(u.page, 'general');
  await joinViaBrowser(carol.page, 'garden');
  await joinViaBrowser(alice.page, 'music');
  await joinViaBrowser(alice.page, 'recipes');
  for (const u of [alice, bob, carol]) await openRoom(u.page, 'general');

  const say = async (u, text) => { await send(u.page, text); await sleep(120); };
  await say(bob, 'Morning all! Anyone up for a walk at lunch?');
  await say(carol, 'Count me in. The forecast says dry until three.');
  await say(carol, 'We could go round the lake this time.');
  await say(alice, 'Same here, I will bring the thermos.');
  await say(alice, 'Also: the notes from Sunday are up at https://wiki.example.org/house/notes');
  await say(bob, '@alice could you add the agenda for Friday while you are at it?');
  await say(carol, 'Agenda ideas:\n• the boiler service\n• summer trip dates\n• who waters the plants in August');
  await say(alice, 'On it! I will put them in order and share before dinner.');
  const dm = async (from, to, text) => {
    await from.page.locator('#btn-new-dm').click();
    await from.page.locator('#dm-form [name=user]').fill(to);
    await from.page.locator('#dm-form button[type=submit]').click();
    await from.page.locator('#dlg-dm').waitFor({ state: 'hidden' });
    await say(from, text);
  };
  const dms = await alice.page.locator('#btn-new-dm').isVisible();
  if (dms) {
    await dm(alice, 'carol', 'Thanks for the jam!');
    await carol.page.locator('#dm-list .nav-item', { hasText: 'alice' }).click();
    await say(carol, 'Any time, there is more in the cupboard');
    await openRoom(alice.page, 'general');
  }
  // News that arrives while alice looks at #general: unread badges.
  const news = async () => {
    await openRoom(bob.page, 'music');
    await say(bob, 'New record arrived, come and listen tonight');
    await say(bob, 'Bring snacks');
    await openRoom(carol.page, 'garden');
    await say(carol, 'The tomatoes are finally red');
    if (dms) await dm(bob, 'alice', 'Are you around later? Got a question about the boiler');
  };

  const shoot = async (name, viewport, colorScheme, mobile) => {
    const u = await newUser(browser, server, { viewport, colorScheme, isMobile: mobile, hasTouch: mobile });
    await login(u.page, 'alice');
    if (mobile) await u.page.locator('#sidebar .nav-item[data-room="general"]').click();
    else await openRoom(u.page, 'general');
    await u.page.locator('#room-name', { hasText: 'general' }).waitFor();
    await u.page.locator('#msg-list .text', { hasText: 'before dinner' }).waitFor();
    await news();
    await u.page.locator('#sidebar .nav-item[data-room="music"] .badge').waitFor({ state: 'attached' });
    if (await u.page.locator('#notify-card').isVisible()) await u.page.locator('#btn-notify-later').click();
    // Carol starts typing the next message.
    await carol.page.evaluate(() => 0);
    await openRoom(carol.page, 'general');
    await carol.page.locator('#input').pressSequentially('Sounds good', { delay: 20 });
    await u.page.locator('#typing', { hasText: 'typing' }).waitFor();
    await sleep(300);
    await u.page.screenshot({ path: join(out, `${name}.png`) });
    if (extra) {
      const x = (n) => join(out, `${name}-${n}.png`);
      if (mobile) {
        await u.page.locator('#btn-nav').click();
        await sleep(350);
        await u.page.screenshot({ path: x('drawer') });
        await u.page.locator('#scrim').click({ position: { x: 370, y: 400 } });
        await sleep(300);
      }
      await u.page.locator('#btn-room-settings').click();
      await sleep(300);
      await u.page.screenshot({ path: x('room-settings') });
      await u.page.keyboard.press('Escape');
      await (mobile ? u.page.locator('#btn-nav').click().then(() => sleep(300)) : null);
      await u.page.locator('#btn-browse').click();
      await u.page.locator('#browse-list .browse-item').first().waitFor();
      await sleep(300);
      await u.page.screenshot({ path: x('browse') });
      await u.page.keyboard.press('Escape');
      await (mobile ? u.page.locator('#btn-nav').click().then(() => sleep(300)) : null);
      await u.page.locator('#btn-admin').click();
      await sleep(500);
      await u.page.screenshot({ path: x('admin') });
      await u.page.keyboard.press('Escape');
    }
    await carol.page.locator('#input').fill('');
    if (u.problems.length) console.error(name, u.problems);
    await u.context.close();
  };

  await shoot('desktop-light', { width: 1280, height: 800 }, 'light', false);
  await shoot('desktop-dark', { width: 1280, height: 800 }, 'dark', false);
  await shoot('phone-light', { width: 390, height: 844 }, 'light', true);
  await shoot('phone-dark', { width: 390, height: 844 }, 'dark', true);
  if (extra) {
    const u = await newUser(browser, server, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    await u.page.screenshot({ path: join(out, 'phone-signin.png') });
    const d = await newUser(browser, server, { colorScheme: 'dark' });
    await d.page.screenshot({ path: join(out, 'desktop-signin-dark.png') });
  }
  console.log('screenshots in', out);
} finally {
  await browser.close();
  await server.stop();
  server.cleanup();
}
