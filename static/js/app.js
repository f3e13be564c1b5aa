// hearth web client: state, socket frames, sidebar, room view, composer.

import { $, h, icon, show, toast, announce, openDialog, confirmBox, avatar } from './dom.js';
import { api, seg, ApiError, setUnauthorizedHandler } from './api.js';
import { createSocket } from './socket.js';
import { messageRow, daySeparator, dayKey, mentions } from './render.js';

const GROUP_MS = 5 * 60 * 1000;
const PAGE = 50;
const SEND_TIMEOUT_MS = 10000;
const TYPING_EVERY_MS = 3000;
const TYPING_SHOW_MS = 5000;
const NAME_RE = /^[A-Za-z0-9_.-]{1,32}$/;

const key = (name) => String(name).toLowerCase();

/** Everything the page knows. L is what survives a reload (localStorage). */
const S = {
  me: null,
  config: null,
  rooms: new Map(), // key → room
  msgs: new Map(), // key → {list, ids, loaded, loading, hasMore}
  members: new Map(), // key → [{name, role, online}]
  online: new Map(), // user key → bool
  typing: new Map(), // key → Map(user → expiry)
  outbox: [], // {nonce, key, room, text, ts, state: 'pending'|'failed', sent, reason, timer}
  mentioned: new Set(),
  drafts: new Map(),
  current: null,
  want: null, // room to open once hello arrives
  pendingOpen: null, // room key to open when its `joined` arrives
  syncing: false,
  ready: false, // hello received and caught up
  hadHello: false,
  wasDown: false,
  features: { dms: true, del: true },
  lastTyping: 0,
  lastProbe: 0,
  maxId: 0, // newest message id received
  showMembers: matchMedia('(min-width: 1200px)').matches,
};
let L = {};

const socket = createSocket({
  onFrame,
  onState: bannerState,
  onClose: onSocketClose,
  // Liveness check: a sync from our cursor is always answered (by `synced`).
  probe: () => {
    if (S.syncing || Date.now() - S.lastProbe < 10000) return false;
    S.lastProbe = Date.now();
    return socket.send({ type: 'sync', since: L.cursor || 0 });
  },
});

/* ---------------- local storage ---------------- */

const storeKey = () => 'hearth:' + key(S.me.name);
function loadLocal() {
  try { L = JSON.parse(localStorage.getItem(storeKey())) || {}; } catch { L = {}; }
  L.seen ||= {};
}
let saveTimer = null;
function save() {
  clearTimeout(saveTimer);
  saveTimer = null;
  if (!S.me) return;
  L.outbox = S.outbox.filter((o) => o.state === 'pending').map(({ nonce, room, text, ts }) => ({ nonce, room, text, ts }));
  try { localStorage.setItem(storeKey(), JSON.stringify(L)); } catch { /* private mode or full */ }
}
const saveSoon = () => { if (!saveTimer) saveTimer = setTimeout(save, 400); };
addEventListener('pagehide', () => save());

/* ---------------- sign in ---------------- */

let authMode = 'login';
const invite = new URLSearchParams(location.search).get('invite');

async function boot() {
  wire();
  setUnauthorizedHandler(() => toLogin('Your session has ended. Please log in again.'));
  S.config = await api('GET', '/api/config', undefined, { quiet401: true }).catch(() => null);
  try {
    const { user } = await api('GET', '/api/me', undefined, { quiet401: true });
    startApp(user);
  } catch (e) {
    showAuth(invite ? 'signup' : 'login');
    if (e.status !== 401) $('auth-error').textContent = e.message;
  }
  $('boot').remove();
}

function showAuth(mode) {
  authMode = mode;
  show($('app'), false);
  show($('auth'));
  const signup = mode === 'signup';
  $('tab-login').setAttribute('aria-selected', String(!signup));
  $('tab-signup').setAttribute('aria-selected', String(signup));
  const form = $('auth-form');
  form.password.autocomplete = signup ? 'new-password' : 'current-password';
  $('auth-submit').textContent = signup ? 'Create account' : 'Log in';
  const policy = S.config && S.config.signup;
  show($('invite-field'), signup && (policy === 'invite' || !!invite));
  if (invite) form.invite.value = invite;
  const note = $('signup-note');
  note.textContent = !signup ? ''
    : policy === 'closed' && !invite ? 'Sign-ups are closed on this server. Ask its administrator for an invitation link.'
    : policy === 'invite' && !invite ? 'This server is invitation-only: paste the code from your invitation.'
    : 'Pick a username people will know you by. Passwords need at least 8 characters.';
  show(note, !!note.textContent);
  $('auth-submit').disabled = signup && policy === 'closed' && !invite;
  $('auth-error').textContent = '';
  document.title = 'hearth';
  (form.username.value ? form.password : form.username).focus();
}

const AUTH_ERRORS = {
  bad_credentials: 'Wrong username or password.',
  name_taken: 'That username is taken. Try another one.',
  bad_name: 'Usernames are 1 to 32 letters, digits, “_”, “.” or “-”.',
  bad_password: 'Passwords need 8 characters or more.',
  disabled: 'This account is disabled. Ask the administrator.',
  busy: 'The server is busy. Try again in a moment.',
  invite_required: 'This server is invitation-only: paste the code from your invitation link.',
  bad_invite: 'That invitation code is not valid any more (used or expired). Ask for a new one.',
  signup_closed: 'Sign-ups are closed on this server.',
};

async function submitAuth(e) {
  e.preventDefault();
  const form = $('auth-form');
  const err = $('auth-error');
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!NAME_RE.test(username)) { err.textContent = AUTH_ERRORS.bad_name; form.username.focus(); return; }
  if (authMode === 'signup' && password.length < 8) { err.textContent = AUTH_ERRORS.bad_password; form.password.focus(); return; }
  const body = { username, password };
  const code = form.invite.value.trim();
  if (authMode === 'signup' && code) body.invite = code;
  const btn = $('auth-submit');
  btn.disabled = true;
  btn.classList.add('busy');
  err.textContent = '';
  try {
    const { user } = await api('POST', authMode === 'signup' ? '/api/signup' : '/api/login', body, { quiet401: true });
    form.password.value = '';
    if (invite) history.replaceState(null, '', '/');
    startApp(user);
    if (authMode === 'signup' && user.role === 'admin') welcomeAdmin(user);
  } catch (ex) {
    err.textContent = AUTH_ERRORS[ex.code] || ex.message;
    if (ex.code === 'invite_required' || ex.code === 'bad_invite') { show($('invite-field')); form.invite.focus(); }
  } finally {
    btn.disabled = false;
    btn.classList.remove('busy');
  }
}

function welcomeAdmin(user) {
  $('welcome-name').textContent = user.name;
  $('welcome-url').textContent = location.origin;
  openDialog($('dlg-welcome'));
}

function startApp(user) {
  S.me = user;
  loadLocal();
  S.outbox = (L.outbox || []).map((o) => ({ ...o, key: key(o.room), state: 'pending', sent: false }));
  show($('auth'), false);
  show($('app'));
  renderMe();
  const hash = decodeURIComponent(location.hash.slice(1));
  S.want = hash || L.last || null;
  S.hadHello = false;
  showEmpty();
  renderSidebar();
  updateNotifyCard();
  socket.start();
  loadDms();
}

function toLogin(message) {
  socket.stop();
  save();
  for (const o of S.outbox) clearTimeout(o.timer);
  Object.assign(S, {
    me: null, rooms: new Map(), msgs: new Map(), members: new Map(), online: new Map(), typing: new Map(),
    outbox: [], mentioned: new Set(), drafts: new Map(), current: null, ready: false, syncing: false, hadHello: false, wasDown: false, maxId: 0,
  });
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
  $('known-users').replaceChildren();
  hideBanner();
  showAuth('login');
  if (message) $('auth-error').textContent = message;
}

async function logout() {
  $('dlg-settings').close();
  socket.stop();
  try { await api('POST', '/api/logout', undefined, { quiet401: true }); } catch { /* gone anyway */ }
  toLogin();
}

function renderMe() {
  $('me-name').textContent = S.me.name;
  $('me-role').textContent = S.me.role === 'admin' ? 'Administrator' : '';
  $('me-avatar').replaceWith(Object.assign(avatar(S.me.name, 'sm'), { id: 'me-avatar' }));
  show($('btn-admin'), S.me.role === 'admin');
}

/* ---------------- socket frames ---------------- */

function onFrame(f) {
  switch (f.type) {
    case 'hello': return onHello(f);
    case 'message': return onMessage(f);
    case 'synced': return onSynced(f);
    case 'joined': return onJoined(f.room);
    case 'left': case 'removed': return onGone(f.room, f.type);
    case 'room': return onRoomUpdate(f.room);
    case 'deleted': return removeMessage(key(f.room), f.id);
    case 'presence': return onPresence(f);
    case 'member': return onMember(f);
    case 'typing': return onTyping(f);
    case 'error': return onError(f);
    default: return undefined;
  }
}

function onHello(f) {
  S.me = { ...S.me, ...f.user };
  renderMe();
  let fresh = false;
  if (L.epoch !== f.epoch) {
    if (L.epoch) { S.msgs.clear(); S.maxId = 0; toast('The server was restored from another database; history reloaded.'); }
    L.epoch = f.epoch;
    L.cursor = f.last_id;
    L.seen = {};
    fresh = true;
  }
  const prev = S.rooms;
  S.rooms = new Map();
  for (const r of f.rooms) {
    const k = key(r.name);
    S.rooms.set(k, { ...prev.get(k), ...r });
    if (fresh || L.seen[k] === undefined) L.seen[k] = fresh ? r.last_id || 0 : 0;
  }
  for (const k of prev.keys()) if (!S.rooms.has(k)) forgetRoom(k);
  S.hadHello = true;
  if (L.cursor >= f.last_id) {
    L.cursor = f.last_id;
    caughtUp();
  } else {
    S.syncing = true;
    requestSync();
  }
  renderSidebar();
  if (S.current && S.rooms.has(S.current)) {
    const st = msgsOf(S.current);
    if (!st.loaded) loadLatest(S.current);
    refreshMembers(S.current);
    renderHeader();
  } else {
    const want = S.want && key(S.want);
    S.want = null;
    const busiest = [...S.rooms.values()].sort((a, b) => (b.last_id || 0) - (a.last_id || 0))[0];
    if (want && S.rooms.has(want)) openRoom(want, { focus: false });
    // A new device: on a wide screen land in the liveliest room; a phone shows the list.
    else if (busiest && !matchMedia('(max-width: 760px)').matches) openRoom(key(busiest.name), { focus: false });
    else showEmpty();
  }
  peekDmPresence();
  save();
}

/**
 * Asks for what was missed; a replay that never ends means a dead socket.
 * The cursor only moves to ids of messages that really arrived, so a
 * replay cut short never skips anything.
 */
let syncTimer = null;
function requestSync(since = L.cursor) {
  clearTimeout(syncTimer);
  socket.send({ type: 'sync', since });
  syncTimer = setTimeout(() => { if (S.syncing) socket.drop(); }, 20000);
}

function onSynced(f) {
  if (f.more) { requestSync(f.last_id); return; }
  clearTimeout(syncTimer);
  if (S.maxId > (L.cursor || 0)) L.cursor = S.maxId;
  if (S.syncing) { S.syncing = false; caughtUp(); }
  saveSoon();
}

/** Connected and every missed message is in: send what waits. */
function caughtUp() {
  S.ready = true;
  for (const o of S.outbox) if (o.state === 'pending' && !o.sent) transmit(o);
  renderPending();
  bannerState({ state: 'open' });
}

async function onSocketClose({ code, reason, opened }) {
  S.ready = false;
  S.syncing = false;
  clearTimeout(syncTimer);
  for (const o of S.outbox) {
    clearTimeout(o.timer);
    o.sent = false;
    if (o.state === 'failed' && o.reason === TIMEOUT_REASON) o.state = 'pending';
  }
  renderPending();
  if (code === 1000 && /logged out/i.test(reason || '')) { toLogin('You were logged out.'); return 'stop'; }
  if (!opened) {
    try { await api('GET', '/api/me', undefined, { quiet401: true }); } catch (e) {
      if (e.status === 401) { toLogin('Your session has ended. Please log in again.'); return 'stop'; }
    }
  }
  if (S.hadHello) S.wasDown = true;
  return 'retry';
}

function onError(f) {
  if (f.nonce) {
    const o = S.outbox.find((x) => x.nonce === f.nonce);
    if (o) { fail(o, SEND_ERRORS[f.code] || f.message || 'Not sent'); return; }
  }
  if (S.pendingOpen) {
    S.pendingOpen = null;
    renderBrowse();
  }
  if (f.code !== 'bad_request') toast(f.message || f.code, 'error');
}

const SEND_ERRORS = {
  rate_limited: 'Not sent: too many messages at once',
  too_long: 'Not sent: too long',
  not_member: 'Not sent: you are not in this room',
  not_found: 'Not sent: this room is gone',
  unavailable: 'Not sent: the server could not save it',
};
const TIMEOUT_REASON = 'Not sent: no answer from the server';

/* ---------------- rooms ---------------- */

function msgsOf(k) {
  let st = S.msgs.get(k);
  if (!st) S.msgs.set(k, (st = { list: [], ids: new Set(), loaded: false, loading: false, hasMore: true }));
  return st;
}

const isMe = (name) => S.me && key(name) === key(S.me.name);
const isDm = (r) => r && r.kind === 'dm';
function peerOf(r) {
  if (r.peer) return r.peer;
  const names = r.name.replace(/^@/, '').split('+');
  return names.find((n) => !isMe(n)) || names[0];
}
const titleOf = (r) => (isDm(r) ? peerOf(r) : r.name);
const canModerate = (r) => r && (S.me.role === 'admin' || r.role === 'owner' || r.role === 'admin');

function setRoom(r) {
  const k = key(r.name);
  const room = { ...S.rooms.get(k), ...r };
  S.rooms.set(k, room);
  return k;
}

function onJoined(r) {
  const k = setRoom(r);
  if (L.seen[k] === undefined || L.seen[k] < (r.last_id || 0) && S.pendingOpen === k) L.seen[k] = r.last_id || 0;
  renderSidebar();
  if (S.pendingOpen === k) {
    S.pendingOpen = null;
    $('dlg-browse').close();
    openRoom(k);
  } else if (S.current === k) renderHeader();
  saveSoon();
}

function onGone(name, why) {
  const k = key(name);
  const r = S.rooms.get(k);
  if (!r) return;
  forgetRoom(k);
  if (why === 'removed') toast(isDm(r) ? `The conversation with ${peerOf(r)} was closed.` : `You are no longer a member of #${r.name}.`);
  renderSidebar();
}

function forgetRoom(k) {
  S.rooms.delete(k);
  S.msgs.delete(k);
  S.members.delete(k);
  delete L.seen[k];
  if (S.current === k) { S.current = null; showEmpty(); }
  saveSoon();
}

function onRoomUpdate(r) {
  if (!S.rooms.has(key(r.name))) return;
  const k = setRoom(r);
  renderSidebar();
  if (k === S.current) renderHeader();
}

function onPresence(f) {
  S.online.set(key(f.user), !!f.online);
  const k = key(f.room);
  const list = S.members.get(k);
  if (list) for (const m of list) if (key(m.name) === key(f.user)) m.online = !!f.online;
  const r = S.rooms.get(k);
  if (r && list) r.online = list.filter((m) => m.online).length;
  if (k === S.current) { renderMembers(); renderHeader(); }
  if (isDm(r)) renderSidebar();
}

function onMember(f) {
  const k = key(f.room);
  const list = S.members.get(k);
  const r = S.rooms.get(k);
  if (f.event === 'role') {
    if (list) for (const m of list) if (key(m.name) === key(f.user)) m.role = f.role;
    if (r && isMe(f.user)) { r.role = f.role; if (k === S.current) renderMessages(); }
  } else if (list) {
    const i = list.findIndex((m) => key(m.name) === key(f.user));
    if (f.event === 'joined' && i < 0) list.push({ name: f.user, role: 'member', online: S.online.get(key(f.user)) ?? true });
    if (f.event !== 'joined' && i >= 0) list.splice(i, 1);
    if (r) { r.members = list.length; r.online = list.filter((m) => m.online).length; }
  }
  if (k === S.current) { renderMembers(); renderHeader(); }
}

/** A message came for a room we have not heard of (a new DM, say): learn it. */
const adopting = new Set();
async function adoptRoom(name) {
  const k = key(name);
  if (adopting.has(k)) return;
  adopting.add(k);
  try {
    const d = await api('GET', `/api/rooms/${seg(name)}`);
    if (d.room.role == null && !isDm(d.room)) return;
    setRoom(d.room);
    if (L.seen[k] === undefined) L.seen[k] = 0;
    S.members.set(k, d.members);
    renderSidebar();
  } catch { /* not ours after all */ } finally {
    adopting.delete(k);
  }
}

async function loadDms() {
  try {
    const { rooms } = await api('GET', '/api/dms');
    S.features.dms = true;
    for (const r of rooms) setRoom({ kind: 'dm', ...r });
  } catch (e) {
    if (e instanceof ApiError && e.missing) S.features.dms = false;
  }
  renderSidebar();
}

/** Learns whether each DM peer is online (presence frames keep it fresh). */
async function peekDmPresence() {
  const dms = [...S.rooms.values()].filter(isDm).slice(0, 20);
  for (const r of dms) {
    if (S.members.has(key(r.name))) continue;
    try { await refreshMembers(key(r.name)); } catch { /* later */ }
  }
}

async function refreshMembers(k) {
  const r = S.rooms.get(k);
  if (!r) return;
  try {
    const d = await api('GET', `/api/rooms/${seg(r.name)}`);
    if (!S.rooms.has(k)) return;
    setRoom(d.room);
    S.members.set(k, d.members);
    for (const m of d.members) S.online.set(key(m.name), !!m.online);
  } catch (e) {
    if (e.status === 404 && S.rooms.has(k)) { /* private room we lost: the socket will say */ }
    return;
  }
  if (k === S.current) { renderMembers(); renderHeader(); }
  if (isDm(S.rooms.get(k))) renderSidebar();
}

/* ---------------- sidebar ---------------- */

function unread(k) {
  const r = S.rooms.get(k);
  const seen = L.seen[k] || 0;
  if (!r || (r.last_id || 0) <= seen) return 0;
  const st = S.msgs.get(k);
  let n = 0;
  if (st) for (let i = st.list.length - 1; i >= 0 && st.list[i].id > seen; i--) if (!isMe(st.list[i].user)) n++;
  return n || -1;
}

function navItem(r) {
  const k = key(r.name);
  const n = k === S.current ? 0 : unread(k);
  const dm = isDm(r);
  const online = dm && S.online.get(key(peerOf(r)));
  const label = titleOf(r);
  const lead = dm
    ? h('span.lead.presence' + (online ? '.on' : ''), null, avatar(label, 'xs'))
    : h('span.lead', null, icon(r.visibility === 'private' ? 'lock' : 'hash'));
  const badge = n > 0 ? h('span.badge' + (S.mentioned.has(k) || dm ? '.hot' : ''), null, n > 99 ? '99+' : String(n))
    : n < 0 ? h('span.badge.dot') : null;
  const sr = n ? `, ${n > 0 ? n : 'new'} unread` : '';
  const a = h('a.nav-item' + (n ? '.unread' : '') + (k === S.current ? '.active' : ''), {
    href: '#' + encodeURIComponent(r.name),
    'aria-current': k === S.current ? 'page' : null,
    'aria-label': (dm ? 'Direct message with ' : 'Room ') + label + (dm ? (online ? ', online' : ', offline') : '') + sr,
    'data-room': k,
    onclick: (e) => { e.preventDefault(); openRoom(k); },
  }, lead, h('span.name', null, label), badge);
  return h('li', null, a);
}

function renderSidebar() {
  if (!S.me) return;
  const all = [...S.rooms.values()];
  const rooms = all.filter((r) => !isDm(r)).sort((a, b) => key(a.name).localeCompare(key(b.name)));
  const dms = all.filter(isDm).sort((a, b) => (b.last_id || 0) - (a.last_id || 0));
  $('room-list').replaceChildren(...rooms.map(navItem));
  $('dm-list').replaceChildren(...dms.map(navItem));
  const empty = $('dm-empty');
  empty.textContent = !S.features.dms ? 'Direct messages are not available on this server yet.'
    : dms.length ? '' : 'No conversations yet.';
  show(empty, !!empty.textContent);
  show($('btn-new-dm'), S.features.dms);
  if (S.hadHello && !rooms.length) $('room-list').append(h('li.side-empty', null, 'You are not in any room yet.'));
  updateTitle();
}

function updateTitle() {
  let total = 0;
  let any = false;
  for (const k of S.rooms.keys()) {
    if (k === S.current && !document.hidden) continue;
    const n = unread(k);
    if (n > 0) total += n;
    if (n) any = true;
  }
  const r = S.current && S.rooms.get(S.current);
  const where = r ? (isDm(r) ? titleOf(r) : '#' + r.name) + ' · ' : '';
  document.title = (total ? `(${total}) ` : '') + where + 'hearth';
  show($('nav-badge'), any);
}

/* ---------------- room view ---------------- */

function showEmpty() {
  S.current = null;
  show($('room'), false);
  show($('empty'));
  show($('btn-members'), false);
  show($('btn-room-settings'), false);
  show($('members'), false);
  $('app').classList.remove('with-members');
  $('room-name').textContent = '';
  $('room-topic').textContent = '';
  $('empty-title').textContent = S.me ? `Welcome, ${S.me.name}` : 'Welcome';
  if (matchMedia('(max-width: 760px)').matches && S.hadHello) setNav(true);
  updateTitle();
}

function openRoom(k, { focus = true } = {}) {
  const r = S.rooms.get(k);
  if (!r) return;
  const input = $('input');
  if (S.current) S.drafts.set(S.current, input.value);
  S.current = k;
  L.last = r.name;
  history.replaceState(null, '', '#' + encodeURIComponent(r.name));
  show($('empty'), false);
  show($('room'));
  input.value = S.drafts.get(k) || '';
  input.placeholder = isDm(r) ? `Message ${titleOf(r)}` : `Message #${r.name}`;
  autosize();
  S.lastTyping = 0;
  renderHeader();
  renderMessages();
  renderPending();
  renderTyping();
  renderMembers();
  scrollToBottom();
  const st = msgsOf(k);
  if (!st.loaded) loadLatest(k); else fillViewport();
  refreshMembers(k);
  setNav(false);
  renderSidebar();
  markSeen();
  if (focus && !matchMedia('(pointer: coarse)').matches) input.focus();
  saveSoon();
}

function renderHeader() {
  const r = S.current && S.rooms.get(S.current);
  if (!r) return;
  const dm = isDm(r);
  const title = $('room-name');
  const online = dm && S.online.get(key(peerOf(r)));
  title.replaceChildren(dm ? h('span.presence.inline' + (online ? '.on' : ''), null, avatar(titleOf(r), 'xs'))
    : icon(r.visibility === 'private' ? 'lock' : 'hash', 'title-icon'), titleOf(r));
  $('room-topic').textContent = dm ? (online ? 'Online' : 'Offline') : r.topic || '';
  const list = S.members.get(S.current);
  const on = list ? list.filter((m) => m.online).length : r.online;
  $('online-count').textContent = dm ? '' : String(r.members ?? '');
  $('btn-members').title = dm ? 'Members' : `${r.members} member${r.members === 1 ? '' : 's'}, ${on ?? 0} online`;
  show($('btn-members'), !dm);
  show($('btn-room-settings'), true);
  $('btn-members').setAttribute('aria-pressed', String(S.showMembers && !dm));
  const withMembers = S.showMembers && !dm;
  show($('members'), withMembers);
  $('app').classList.toggle('with-members', withMembers);
  show($('scrim'), (withMembers && matchMedia('(max-width: 1199px)').matches) || $('app').classList.contains('nav-open'));
}

function scroller() { return $('scroller'); }
// Whether the view follows the newest message (true while the user is at the bottom).
let stick = true;
function atBottom() {
  const s = scroller();
  return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
}
function scrollToBottom() {
  const s = scroller();
  s.scrollTop = s.scrollHeight;
  stick = true;
  show($('jump'), false);
}

const sameGroup = (a, b) => a && b && key(a.user) === key(b.user) && b.ts - a.ts < GROUP_MS && dayKey(a.ts) === dayKey(b.ts);

let rendered = { k: null, last: null };

function rowOpts(m) {
  const r = S.rooms.get(S.current);
  const mine = isMe(m.user);
  return {
    me: S.me.name,
    mine,
    canDelete: S.features.del && (mine || canModerate(r)),
    onDelete: deleteMessage,
  };
}

/** Rebuilds the message list of the open room. */
function renderMessages() {
  const k = S.current;
  const st = msgsOf(k);
  const frag = document.createDocumentFragment();
  let prev = null;
  for (const m of st.list) {
    if (!prev || dayKey(prev.ts) !== dayKey(m.ts)) frag.append(daySeparator(m.ts));
    frag.append(messageRow(m, sameGroup(prev, m), rowOpts(m)));
    prev = m;
  }
  $('msg-list').replaceChildren(frag);
  rendered = { k, last: prev };
  renderTop();
}

function renderTop() {
  const st = msgsOf(S.current);
  const r = S.rooms.get(S.current);
  const top = $('history-top');
  if (st.loading) top.replaceChildren(h('div.loading', { role: 'status' }, h('span.spinner'), 'Loading messages…'));
  else if (st.error) top.replaceChildren(h('div.loading', null, st.error));
  else if (st.loaded && !st.hasMore && r) {
    top.replaceChildren(h('div.beginning', null,
      isDm(r) ? avatar(titleOf(r), 'lg') : h('span.big-icon', null, icon(r.visibility === 'private' ? 'lock' : 'hash')),
      h('h3', null, isDm(r) ? titleOf(r) : '#' + r.name),
      h('p', null, isDm(r) ? `This is the beginning of your conversation with ${titleOf(r)}.`
        : `This is the very beginning of #${r.name}.` + (r.topic ? ' ' + r.topic : ''))));
  } else top.replaceChildren();
}

/** A message arrived for the open room: append it, or rebuild when it lands in the middle. */
function showNew(m) {
  const bottom = atBottom();
  const st = msgsOf(S.current);
  if (rendered.k === S.current && st.list[st.list.length - 1] === m && (!rendered.last || rendered.last.id < m.id)) {
    const prev = rendered.last;
    const list = $('msg-list');
    if (!prev || dayKey(prev.ts) !== dayKey(m.ts)) list.append(daySeparator(m.ts));
    list.append(messageRow(m, sameGroup(prev, m), rowOpts(m)));
    rendered.last = m;
  } else {
    renderMessages();
  }
  renderPending();
  if (bottom || isMe(m.user)) scrollToBottom();
  else show($('jump'));
}

function addMessages(k, list) {
  const st = msgsOf(k);
  const added = [];
  for (const m of list) {
    if (st.ids.has(m.id)) continue;
    st.ids.add(m.id);
    added.push(m);
    const last = st.list[st.list.length - 1];
    st.list.push(m);
    if (last && last.id > m.id) st.sorted = false;
  }
  if (st.sorted === false) { st.list.sort((a, b) => a.id - b.id); st.sorted = true; }
  return added;
}

function onMessage(m) {
  const k = key(m.room);
  const mine = isMe(m.user);
  if (mine && m.nonce) {
    const i = S.outbox.findIndex((o) => o.nonce === m.nonce);
    if (i >= 0) { clearTimeout(S.outbox[i].timer); S.outbox.splice(i, 1); saveSoon(); }
  }
  if (m.id > S.maxId) S.maxId = m.id;
  if (!S.syncing && m.id > (L.cursor || 0)) L.cursor = m.id;
  const r = S.rooms.get(k);
  if (r && m.id > (r.last_id || 0)) r.last_id = m.id;
  if (!r) adoptRoom(m.room);
  const added = addMessages(k, [m]).length;
  if (!added) { if (k === S.current) renderPending(); return; }
  if (mine && m.id > (L.seen[k] || 0)) L.seen[k] = m.id;
  const typers = S.typing.get(k);
  if (typers && typers.delete(key(m.user)) && k === S.current) renderTyping();
  if (k === S.current) {
    showNew(m);
    if (!mine) announce(`${m.user}: ${m.text.slice(0, 300)}`);
  }
  if (!mine) {
    if (mentions(m.text, S.me.name) && !(k === S.current && !document.hidden && atBottom())) S.mentioned.add(k);
    maybeNotify(k, m);
  }
  markSeen();
  renderSidebar();
  saveSoon();
}

function removeMessage(k, id) {
  const st = S.msgs.get(k);
  if (!st || !st.ids.has(id)) return;
  st.ids.delete(id);
  st.list = st.list.filter((m) => m.id !== id);
  if (k === S.current) {
    const s = scroller();
    const bottom = atBottom();
    const top = s.scrollTop;
    renderMessages();
    if (bottom) scrollToBottom(); else s.scrollTop = top;
  }
}

async function deleteMessage(m) {
  const r = S.rooms.get(S.current);
  if (!r) return;
  const ok = await confirmBox('Delete message?', `“${m.text.length > 120 ? m.text.slice(0, 120) + '…' : m.text}” will be removed for everyone.`, 'Delete');
  if (!ok) return;
  try {
    await api('DELETE', `/api/rooms/${seg(r.name)}/messages/${m.id}`);
    removeMessage(key(r.name), m.id);
  } catch (e) {
    if (e.missing) { S.features.del = false; renderMessages(); toast('Deleting messages is not available on this server yet.'); }
    else toast(e.message, 'error');
  }
}

async function loadLatest(k) {
  const st = msgsOf(k);
  const r = S.rooms.get(k);
  if (st.loading || !r) return;
  st.loading = true;
  st.error = null;
  if (k === S.current) renderTop();
  try {
    const { messages } = await api('GET', `/api/rooms/${seg(r.name)}/messages?limit=${PAGE}`);
    addMessages(k, messages);
    st.loaded = true;
    st.hasMore = messages.length >= PAGE;
  } catch (e) {
    st.error = e.status === 403 ? 'Join this room to read its messages.' : `Could not load messages: ${e.message}`;
  } finally {
    st.loading = false;
  }
  if (k === S.current) {
    renderMessages();
    renderPending();
    scrollToBottom();
    markSeen();
    renderSidebar();
    fillViewport();
  }
}

async function loadOlder() {
  const k = S.current;
  const st = msgsOf(k);
  const r = S.rooms.get(k);
  if (!r || st.loading || !st.loaded || !st.hasMore) return;
  const before = st.list.length ? st.list[0].id : null;
  if (before == null) return;
  st.loading = true;
  renderTop();
  let messages = [];
  try {
    ({ messages } = await api('GET', `/api/rooms/${seg(r.name)}/messages?before=${before}&limit=${PAGE}`));
    addMessages(k, messages);
    st.hasMore = messages.length >= PAGE;
  } catch (e) {
    toast(`Could not load older messages: ${e.message}`, 'error');
  } finally {
    st.loading = false;
  }
  if (k !== S.current) return;
  const s = scroller();
  const h0 = s.scrollHeight;
  const t0 = s.scrollTop;
  renderMessages();
  s.scrollTop = t0 + (s.scrollHeight - h0);
  fillViewport();
}

/** Keeps loading older pages until the list overflows the view. */
function fillViewport() {
  const s = scroller();
  const st = msgsOf(S.current);
  if (st.loaded && st.hasMore && !st.loading && s.scrollHeight <= s.clientHeight + 200) loadOlder();
}

function markSeen() {
  const k = S.current;
  if (!k || document.hidden || !atBottom()) return;
  const r = S.rooms.get(k);
  const st = S.msgs.get(k);
  const last = Math.max(r ? r.last_id || 0 : 0, st && st.list.length ? st.list[st.list.length - 1].id : 0);
  if ((L.seen[k] || 0) < last || S.mentioned.has(k)) {
    L.seen[k] = last;
    S.mentioned.delete(k);
    renderSidebar();
    saveSoon();
  }
}

/* ---------------- composer and outbox ---------------- */

function nonce() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function submitMessage(e) {
  e.preventDefault();
  const input = $('input');
  const text = input.value;
  if (!text.trim() || !S.current) return;
  if (text.length > 4000) { toast('Messages are at most 4000 characters.', 'error'); return; }
  const r = S.rooms.get(S.current);
  const o = { nonce: nonce(), key: S.current, room: r.name, text, ts: Date.now(), state: 'pending', sent: false };
  S.outbox.push(o);
  input.value = '';
  S.drafts.delete(S.current);
  autosize();
  S.lastTyping = 0;
  transmit(o);
  renderPending();
  scrollToBottom();
  save();
}

function transmit(o) {
  if (!S.ready || o.state !== 'pending') return;
  if (socket.send({ type: 'send', room: o.room, text: o.text, nonce: o.nonce })) {
    o.sent = true;
    clearTimeout(o.timer);
    o.timer = setTimeout(() => {
      if (!S.outbox.includes(o) || o.state !== 'pending') return;
      fail(o, TIMEOUT_REASON);
      socket.check();
    }, SEND_TIMEOUT_MS);
  }
}

function fail(o, reason) {
  clearTimeout(o.timer);
  o.state = 'failed';
  o.sent = false;
  o.reason = reason;
  // Nothing was stored for an error; a timeout may have been: keep its nonce.
  if (reason !== TIMEOUT_REASON) o.nonce = nonce();
  renderPending();
  save();
}

function retry(o) {
  o.state = 'pending';
  o.reason = null;
  transmit(o);
  renderPending();
}

function discard(o) {
  clearTimeout(o.timer);
  S.outbox = S.outbox.filter((x) => x !== o);
  renderPending();
  save();
}

function renderPending() {
  const k = S.current;
  const box = $('pending-list');
  if (!k) { box.replaceChildren(); return; }
  const bottom = atBottom();
  let prev = rendered.k === k ? rendered.last : null;
  const rows = [];
  for (const o of S.outbox) {
    if (o.key !== k) continue;
    const m = { id: null, user: S.me.name, text: o.text, ts: o.ts };
    rows.push(messageRow(m, sameGroup(prev, m), {
      me: S.me.name,
      mine: true,
      pending: { state: o.state, reason: o.reason, nonce: o.nonce, queued: !S.ready, onRetry: () => retry(o), onDiscard: () => discard(o) },
    }));
    prev = m;
  }
  box.replaceChildren(...rows);
  if (bottom) scroller().scrollTop = scroller().scrollHeight;
}

function autosize() {
  const input = $('input');
  input.style.height = 'auto';
  input.style.height = Math.min(input.scrollHeight, Math.round(innerHeight * 0.4)) + 'px';
}

function onInput() {
  autosize();
  const now = Date.now();
  if (S.current && $('input').value.trim() && now - S.lastTyping > TYPING_EVERY_MS && S.ready) {
    S.lastTyping = now;
    socket.send({ type: 'typing', room: S.rooms.get(S.current).name });
  }
}

function onKey(e) {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
    e.preventDefault();
    $('composer').requestSubmit();
  }
}

/* ---------------- typing ---------------- */

function onTyping(f) {
  if (isMe(f.user)) return;
  const k = key(f.room);
  if (!S.typing.has(k)) S.typing.set(k, new Map());
  S.typing.get(k).set(key(f.user), { name: f.user, until: Date.now() + TYPING_SHOW_MS });
  if (k === S.current) renderTyping();
  setTimeout(() => { if (k === S.current) renderTyping(); }, TYPING_SHOW_MS + 100);
}

function renderTyping() {
  const box = $('typing');
  const m = S.current && S.typing.get(S.current);
  const now = Date.now();
  const names = [];
  if (m) for (const [k, t] of m) { if (t.until > now) names.push(t.name); else m.delete(k); }
  const text = names.length === 0 ? ''
    : names.length === 1 ? `${names[0]} is typing…`
    : names.length === 2 ? `${names[0]} and ${names[1]} are typing…`
    : 'Several people are typing…';
  if (box.textContent === text) return;
  box.replaceChildren(...(text ? [h('span.dots', { 'aria-hidden': 'true' }, h('i'), h('i'), h('i')), h('span', null, text)] : []));
}

/* ---------------- members ---------------- */

const ROLE_ORDER = { owner: 0, admin: 1, member: 2 };
const ROLE_LABEL = { owner: 'Owner', admin: 'Admin', member: '' };

function renderMembers() {
  const k = S.current;
  const box = $('member-list');
  const list = k && S.members.get(k);
  if (!list) { box.replaceChildren(h('p.side-empty', null, 'Loading…')); return; }
  const sorted = [...list].sort((a, b) => (b.online - a.online) || (ROLE_ORDER[a.role] - ROLE_ORDER[b.role]) || key(a.name).localeCompare(key(b.name)));
  const on = sorted.filter((m) => m.online);
  const off = sorted.filter((m) => !m.online);
  const group = (title, arr) => arr.length ? [h('h3.member-group', null, `${title} — ${arr.length}`),
    h('ul.nav-list', null, arr.map((m) => h('li.member' + (m.online ? '' : '.off'), null,
      h('span.lead.presence' + (m.online ? '.on' : ''), null, avatar(m.name, 'sm')),
      h('span.name', null, m.name, isMe(m.name) ? h('span.you', null, ' (you)') : null),
      ROLE_LABEL[m.role] ? h('span.role.' + m.role, null, ROLE_LABEL[m.role]) : null,
      m.online ? h('span.sr-only', null, ', online') : h('span.sr-only', null, ', offline'))))] : [];
  box.replaceChildren(...group('Online', on), ...group('Offline', off));
  const known = $('known-users');
  const names = new Set([...known.options].map((o) => o.value));
  for (const m of list) if (!names.has(m.name) && !isMe(m.name)) known.append(h('option', { value: m.name }));
}

function toggleMembers() {
  S.showMembers = !S.showMembers;
  renderHeader();
  if (S.showMembers && S.current) refreshMembers(S.current);
}

/* ---------------- dialogs ---------------- */

let browseRooms = null;

async function openBrowse() {
  setNav(false);
  openDialog($('dlg-browse'));
  $('browse-q').value = '';
  $('browse-q').focus();
  browseRooms = null;
  renderBrowse();
  try {
    const { rooms } = await api('GET', '/api/rooms');
    browseRooms = rooms.filter((r) => !isDm(r));
  } catch (e) {
    browseRooms = e.message;
  }
  renderBrowse();
}

function renderBrowse() {
  const ul = $('browse-list');
  if (browseRooms === null) { ul.replaceChildren(h('li.browse-empty', null, h('span.spinner'), 'Loading rooms…')); return; }
  if (typeof browseRooms === 'string') { ul.replaceChildren(h('li.browse-empty', null, browseRooms)); return; }
  const q = $('browse-q').value.trim().toLowerCase();
  const list = browseRooms.filter((r) => !q || r.name.toLowerCase().includes(q) || (r.topic || '').toLowerCase().includes(q));
  if (!list.length) {
    ul.replaceChildren(h('li.browse-empty', null, browseRooms.length ? 'No room matches that search.' : 'No rooms yet. Create the first one!'));
    return;
  }
  ul.replaceChildren(...list.map((r) => {
    const k = key(r.name);
    const member = S.rooms.has(k) || (r.role != null);
    const joining = S.pendingOpen === k;
    return h('li.browse-item', null,
      h('span.lead', null, icon(r.visibility === 'private' ? 'lock' : 'hash')),
      h('div.browse-text', null,
        h('strong', null, r.name),
        r.topic ? h('p', null, r.topic) : null,
        h('small', null, `${r.members} member${r.members === 1 ? '' : 's'} · ${r.online} online`)),
      h('button.btn.sm' + (member ? '' : '.primary'), {
        type: 'button',
        disabled: joining,
        'aria-label': (member ? 'Open ' : 'Join ') + r.name,
        onclick: () => joinRoom(r),
      }, joining ? 'Joining…' : member ? 'Open' : 'Join'));
  }));
}

function joinRoom(r) {
  const k = key(r.name);
  if (S.rooms.has(k)) { $('dlg-browse').close(); openRoom(k); return; }
  if (!socket.send({ type: 'join', room: r.name })) { toast('You are offline. Try again once reconnected.', 'error'); return; }
  S.pendingOpen = k;
  renderBrowse();
}

function openCreate() {
  setNav(false);
  $('dlg-browse').close();
  const form = $('create-form');
  form.reset();
  openDialog($('dlg-create'));
  form.name.focus();
}

async function submitCreate(e) {
  e.preventDefault();
  const form = $('create-form');
  const err = form.querySelector('.form-error');
  const name = form.name.value.trim();
  if (!NAME_RE.test(name)) { err.textContent = 'Room names are 1 to 32 letters, digits, “_”, “.” or “-”.'; form.name.focus(); return; }
  const body = { name, visibility: form.visibility.value };
  const topic = form.topic.value.trim();
  if (topic) body.topic = topic;
  const btn = form.querySelector('[type=submit]');
  btn.disabled = true;
  try {
    const { room } = await api('POST', '/api/rooms', body);
    const k = setRoom(room);
    L.seen[k] = room.last_id || 0;
    $('dlg-create').close();
    renderSidebar();
    openRoom(k);
  } catch (ex) {
    err.textContent = ex.code === 'name_taken' ? 'A room with that name already exists.' : ex.message;
  } finally {
    btn.disabled = false;
  }
}

function openDm() {
  setNav(false);
  const form = $('dm-form');
  form.reset();
  openDialog($('dlg-dm'));
  form.user.focus();
}

async function submitDm(e) {
  e.preventDefault();
  const form = $('dm-form');
  const err = form.querySelector('.form-error');
  const user = form.user.value.trim().replace(/^@/, '');
  if (!NAME_RE.test(user)) { err.textContent = 'Type a username.'; return; }
  if (isMe(user)) { err.textContent = 'That is you! Pick someone else.'; return; }
  const btn = form.querySelector('[type=submit]');
  btn.disabled = true;
  try {
    const { room } = await api('POST', '/api/dms', { user });
    const k = setRoom({ kind: 'dm', ...room });
    if (L.seen[k] === undefined) L.seen[k] = room.last_id || 0;
    $('dlg-dm').close();
    renderSidebar();
    openRoom(k);
  } catch (ex) {
    if (ex.missing) { S.features.dms = false; renderSidebar(); err.textContent = 'Direct messages are not available on this server yet.'; }
    else err.textContent = ex.status === 404 ? `There is nobody called “${user}” here.` : ex.message;
  } finally {
    btn.disabled = false;
  }
}

function openSettings() {
  setNav(false);
  $('settings-me').textContent = S.me.name;
  const v = S.config && S.config.version;
  $('settings-version').textContent = (S.me.role === 'admin' ? 'Administrator of this server' : 'Member of this server') + (v ? ` · hearth ${v}` : '');
  renderNotifySetting();
  openDialog($('dlg-settings'));
}

function roomCtx() {
  return {
    S, api, seg, key, isMe, isDm, titleOf, canModerate, toast, confirmBox, openDialog, socket,
    refreshMembers, setRoom, renderSidebar, renderHeader, forgetRoom,
  };
}

async function openRoomSettings() {
  const r = S.current && S.rooms.get(S.current);
  if (!r) return;
  const m = await import('./room.js');
  m.openRoomSettings(roomCtx(), S.current);
}

async function openAdmin() {
  setNav(false);
  const m = await import('./admin.js');
  m.openAdmin(roomCtx());
}

/* ---------------- notifications ---------------- */

const notifyPerm = () => ('Notification' in window ? Notification.permission : 'unsupported');

function updateNotifyCard() {
  show($('notify-card'), notifyPerm() === 'default' && !L.notifyLater);
}

async function askNotify() {
  if (notifyPerm() === 'unsupported') return;
  const p = await Notification.requestPermission();
  L.notify = p === 'granted';
  if (p === 'granted') toast('Notifications are on for mentions and direct messages.');
  updateNotifyCard();
  renderNotifySetting();
  save();
}

function renderNotifySetting() {
  const p = notifyPerm();
  const btn = $('btn-notify-toggle');
  const state = $('notify-state');
  btn.disabled = p === 'denied' || p === 'unsupported';
  if (p === 'unsupported') { state.textContent = 'This browser cannot show notifications.'; btn.textContent = 'Unavailable'; }
  else if (p === 'denied') { state.textContent = 'Blocked in the browser’s site settings.'; btn.textContent = 'Blocked'; }
  else if (p === 'default') { state.textContent = 'Mentions and direct messages, while hearth is in the background.'; btn.textContent = 'Turn on'; }
  else { state.textContent = L.notify ? 'On for mentions and direct messages.' : 'Off.'; btn.textContent = L.notify ? 'Turn off' : 'Turn on'; }
}

function toggleNotify() {
  if (notifyPerm() === 'default') { askNotify(); return; }
  L.notify = !L.notify;
  renderNotifySetting();
  save();
}

function maybeNotify(k, m) {
  if (!L.notify || notifyPerm() !== 'granted') return;
  if (document.visibilityState === 'visible' && document.hasFocus()) return;
  if (Date.now() - m.ts > 120000) return;
  const r = S.rooms.get(k);
  if (!r) return;
  if (!isDm(r) && !mentions(m.text, S.me.name)) return;
  try {
    const n = new Notification(isDm(r) ? m.user : `${m.user} in #${r.name}`, { body: m.text.slice(0, 200), tag: 'hearth-' + k, icon: '/favicon.svg' });
    n.onclick = () => { focus(); openRoom(k); n.close(); };
  } catch { /* some platforms need a service worker for this */ }
}

/* ---------------- connection banner ---------------- */

let bannerTimer = null;
let firstConnectTimer = null;

function hideBanner() {
  clearInterval(bannerTimer);
  clearTimeout(firstConnectTimer);
  show($('banner'), false);
}

function setBanner(text, kind, retry = false) {
  const b = $('banner');
  $('banner-text').textContent = text;
  b.className = 'banner ' + kind;
  show($('banner-retry'), retry);
  show(b);
}

function bannerState(st) {
  clearInterval(bannerTimer);
  clearTimeout(firstConnectTimer);
  if (st.state === 'stopped') { show($('banner'), false); return; }
  if (st.state === 'connecting') {
    if (S.wasDown || S.hadHello) setBanner('Reconnecting…', 'warn');
    else firstConnectTimer = setTimeout(() => setBanner('Connecting…', 'warn'), 1200);
    return;
  }
  if (st.state === 'waiting') {
    const tick = () => {
      const s = Math.max(1, Math.ceil((st.at - Date.now()) / 1000));
      const lead = navigator.onLine === false ? 'You are offline.' : 'Connection lost.';
      setBanner(`${lead} Reconnecting in ${s} s…`, 'warn', true);
    };
    tick();
    bannerTimer = setInterval(tick, 1000);
    renderPending();
    return;
  }
  if (st.state === 'open') {
    if (!S.ready) return; // still catching up
    if (S.wasDown) {
      S.wasDown = false;
      setBanner('Back online', 'ok');
      bannerTimer = setTimeout(() => show($('banner'), false), 2500);
    } else show($('banner'), false);
  }
}

/* ---------------- phone drawer ---------------- */

function setNav(open) {
  const app = $('app');
  const phone = matchMedia('(max-width: 760px)').matches;
  if (open && !phone) return;
  app.classList.toggle('nav-open', open);
  show($('scrim'), open);
  $('btn-nav').setAttribute('aria-expanded', String(open));
  if (open) $('sidebar').querySelector('.nav-item.active, .nav-item, button')?.focus();
}

/* ---------------- wiring ---------------- */

function wake() {
  if (S.me) socket.nudge();
}

function wire() {
  $('tab-login').onclick = () => showAuth('login');
  $('tab-signup').onclick = () => showAuth('signup');
  $('auth-form').onsubmit = submitAuth;
  $('composer').onsubmit = submitMessage;
  const input = $('input');
  input.addEventListener('input', onInput);
  input.addEventListener('keydown', onKey);
  scroller().addEventListener('scroll', () => {
    stick = atBottom();
    if (stick) { show($('jump'), false); markSeen(); }
    if (scroller().scrollTop < 400) loadOlder();
  }, { passive: true });
  $('jump').onclick = () => { scrollToBottom(); markSeen(); };
  // Keep the newest message in view when the view shrinks (phone keyboard,
  // banner) or the content grows, as long as the user was at the bottom.
  if (window.ResizeObserver) {
    const follow = new ResizeObserver(() => { if (stick) scroller().scrollTop = scroller().scrollHeight; });
    for (const id of ['scroller', 'msg-list', 'pending-list']) follow.observe($(id));
  }
  // Touch screens have no hover: a tap on a message shows its actions.
  $('msg-list').addEventListener('click', (e) => {
    const row = e.target.closest('.msg');
    if (!row || e.target.closest('a, button') || !matchMedia('(hover: none)').matches) return;
    for (const t of $('msg-list').querySelectorAll('.touched')) if (t !== row) t.classList.remove('touched');
    row.classList.toggle('touched');
  });
  for (const id of ['btn-browse', 'btn-browse2', 'empty-browse']) $(id).onclick = openBrowse;
  for (const id of ['btn-new-room', 'empty-create', 'browse-create']) $(id).onclick = openCreate;
  $('btn-new-dm').onclick = openDm;
  $('browse-q').oninput = renderBrowse;
  $('create-form').onsubmit = submitCreate;
  $('dm-form').onsubmit = submitDm;
  $('btn-settings').onclick = openSettings;
  $('btn-logout').onclick = logout;
  $('btn-admin').onclick = openAdmin;
  $('btn-room-settings').onclick = openRoomSettings;
  $('btn-members').onclick = toggleMembers;
  $('btn-members-close').onclick = toggleMembers;
  $('btn-nav').onclick = () => setNav(!$('app').classList.contains('nav-open'));
  $('scrim').onclick = () => {
    if ($('app').classList.contains('nav-open')) setNav(false);
    else if (S.showMembers) toggleMembers();
  };
  $('btn-notify-on').onclick = askNotify;
  $('btn-notify-later').onclick = () => { L.notifyLater = true; updateNotifyCard(); save(); };
  $('btn-notify-toggle').onclick = toggleNotify;
  $('banner-retry').onclick = () => socket.retryNow();
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape' || document.querySelector('dialog[open]')) return;
    if ($('app').classList.contains('nav-open')) setNav(false);
    else if (S.showMembers && !$('scrim').hidden) toggleMembers();
  });
  addEventListener('online', wake);
  addEventListener('offline', () => { if (S.me) socket.nudge(); });
  addEventListener('focus', () => { wake(); markSeen(); });
  addEventListener('pageshow', (e) => { if (e.persisted) wake(); });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') { wake(); markSeen(); updateTitle(); }
  });
  addEventListener('resize', () => { if (!matchMedia('(max-width: 760px)').matches) setNav(false); });
  addEventListener('hashchange', () => {
    const k = key(decodeURIComponent(location.hash.slice(1)));
    if (S.rooms.has(k) && k !== S.current) openRoom(k);
  });
}

boot();
