// Shared helpers for the end-to-end tests: the real server binary over TLS
// on 127.0.0.1, and Debian's Chromium driven by playwright-core.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = resolve(REPO, process.env.HEARTH_BIN || 'target/release/hearth');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const PASSWORD = 'correct horse battery';

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.unref();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** A temp dir removed by cleanup(). */
export function tempDir(prefix) {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * Starts the server. `opts`: {port, data, certs, args}. Resolves once it
 * prints "Listening on". E2E_DEV_STATIC=1 serves static/ from the work tree.
 */
export async function startServer(opts = {}) {
  if (!existsSync(BIN)) throw new Error(`server binary not found at ${BIN} (set HEARTH_BIN)`);
  const server = {
    port: opts.port || (await freePort()),
    data: opts.data || tempDir('hearth-e2e-data-'),
    certs: opts.certs || tempDir('hearth-e2e-certs-'),
    proc: null,
    log: '',
    get url() { return `https://127.0.0.1:${this.port}`; },
    async start() {
      const env = { ...process.env };
      delete env.HEARTH_DEV_STATIC;
      if (process.env.E2E_DEV_STATIC === '1') env.HEARTH_DEV_STATIC = join(REPO, 'static');
      const args = ['--listen', `127.0.0.1:${this.port}`, '--data', this.data, '--certs', this.certs, '--log-level', 'warn', ...(opts.args || [])];
      const proc = spawn(BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      this.proc = proc;
      let out = '';
      const onData = (d) => { out += d; this.log += d; };
      proc.stdout.on('data', onData);
      proc.stderr.on('data', onData);
      await new Promise((ok, fail) => {
        const timer = setTimeout(() => fail(new Error('server did not start within 20 s:\n' + out)), 20000);
        const check = () => { if (out.includes(`Listening on 127.0.0.1:${this.port}`)) { clearTimeout(timer); ok(); } };
        proc.stdout.on('data', check);
        proc.once('exit', (code) => { clearTimeout(timer); fail(new Error(`server exited (${code}) before listening:\n${out}`)); });
      });
    },
    /** SIGTERM, then wait for the exit (SIGKILL after 10 s). */
    async stop() {
      const proc = this.proc;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((ok) => proc.once('exit', ok));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
      await exited;
      clearTimeout(t);
    },
    cleanup() {
      for (const d of [this.data, this.certs]) { try { rmSync(d, { recursive: true, force: true }); } catch { /* ignore */ } }
    },
  };
  await server.start();
  return server;
}

export const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

export async function launch() {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30000,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--ignore-certificate-errors', '--disable-quic', '--no-first-run',
      '--disable-features=Translate,MediaRouter,OptimizationHints',
    ],
  });
}

/**
 * A user: its own browser context (cookies, storage) and page. Records page
 * errors, CSP violations and any alert/confirm/prompt (which would mean
 * injected script ran) into `problems`.
 */
export async function newUser(browser, server, opts = {}) {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: opts.viewport || { width: 1280, height: 800 },
    colorScheme: opts.colorScheme || 'light',
    deviceScaleFactor: opts.deviceScaleFactor || 1,
    isMobile: opts.isMobile || false,
    hasTouch: opts.hasTouch || false,
    timezoneId: 'Europe/Paris',
    locale: 'en-GB',
  });
  context.setDefaultTimeout(opts.timeout || 15000);
  const problems = [];
  const user = { context, problems, page: null };
  await reopen(user, server.url + '/');
  return user;
}

/** Opens a new page for `user` (same context: cookies and storage) at `url`. */
export async function reopen(user, url) {
  const page = await user.context.newPage();
  const { problems } = user;
  page.on('dialog', async (d) => { problems.push(`unexpected ${d.type()} dialog: ${d.message()}`); await d.dismiss().catch(() => {}); });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => {
    const t = m.text();
    if (/Content Security Policy|Refused to/i.test(t)) problems.push('CSP: ' + t);
    else if (m.type() === 'error' && !/Failed to load resource|WebSocket connection|ERR_CONNECTION_REFUSED|net::ERR/i.test(t)) problems.push('console error: ' + t);
  });
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  user.page = page;
  return page;
}

/** Signs up through the form; resolves when the app shell is visible. */
export async function signup(page, name, password = PASSWORD) {
  await page.locator('#tab-signup').click();
  await page.locator('#auth-form [name=username]').fill(name);
  await page.locator('#auth-form [name=password]').fill(password);
  await page.locator('#auth-submit').click();
  await page.locator('#app').waitFor({ state: 'visible' });
  await page.locator('#me-name', { hasText: name }).waitFor();
}

export async function login(page, name, password = PASSWORD) {
  await page.locator('#tab-login').click();
  await page.locator('#auth-form [name=username]').fill(name);
  await page.locator('#auth-form [name=password]').fill(password);
  await page.locator('#auth-submit').click();
  await page.locator('#app').waitFor({ state: 'visible' });
}

/** Creates a room through the dialog and waits until it is open. */
export async function createRoom(page, name, { topic = '', visibility = 'public' } = {}) {
  await page.locator('#btn-new-room').click();
  const form = page.locator('#create-form');
  await form.locator('[name=name]').fill(name);
  if (topic) await form.locator('[name=topic]').fill(topic);
  await form.locator(`input[name=visibility][value=${visibility}]`).check();
  await form.locator('button[type=submit]').click();
  await page.locator('#dlg-create').waitFor({ state: 'hidden' });
  await page.locator('#room-name', { hasText: name }).waitFor();
}

/** Joins a public room through the room browser. */
export async function joinViaBrowser(page, name) {
  await page.locator('#btn-browse').click();
  const item = page.locator('#browse-list .browse-item', { has: page.locator('strong', { hasText: new RegExp(`^${name}$`) }) });
  await item.getByRole('button', { name: `Join ${name}` }).click();
  await page.locator('#dlg-browse').waitFor({ state: 'hidden' });
  await page.locator('#room-name', { hasText: name }).waitFor();
}

export async function openRoom(page, name) {
  await page.locator(`#sidebar .nav-item[data-room="${name.toLowerCase()}"]`).click();
  await page.locator('#room-name', { hasText: name }).waitFor();
}

export async function send(page, text) {
  const input = page.locator('#input');
  await input.fill(text);
  await input.press('Enter');
}

/** Texts of the confirmed messages shown in the open room, in order. */
export function shownTexts(page) {
  return page.locator('#msg-list .msg .text').allTextContents();
}

/** Waits until `fn` returns truthy (polling), or throws with `what`. */
export async function until(fn, what, timeout = 15000) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(150);
  }
}

/** HTTP status of a same-origin request made by the page (with its cookie). */
export function pageFetch(page, method, path, body) {
  return page.evaluate(async ([m, p, b]) => {
    const r = await fetch(p, { method: m, headers: b ? { 'Content-Type': 'application/json' } : {}, body: b ? JSON.stringify(b) : undefined });
    let json = null;
    try { json = await r.json(); } catch { /* empty */ }
    return { status: r.status, json };
  }, [method, path, body]);
}

/** The fixture most suites share: a server, a browser, and alice (the
 *  administrator) and bob, both in `room`. */
export async function twoInARoom(room, { server: serverOpts = {}, room: roomOpts = {} } = {}) {
  const server = await startServer(serverOpts);
  const browser = await launch();
  const alice = await newUser(browser, server);
  const bob = await newUser(browser, server);
  await signup(alice.page, 'alice');
  await alice.page.keyboard.press('Escape');
  await signup(bob.page, 'bob');
  await createRoom(alice.page, room, roomOpts);
  await joinViaBrowser(bob.page, room);
  return { server, browser, alice, bob };
}

/** Closes what `twoInARoom` opened. */
export async function teardown({ browser, server }) {
  await browser?.close();
  await server?.stop();
  server?.cleanup();
}
