// Message text and time formatting. Everything a user typed goes in as text.

import { h, icon, avatar } from './dom.js';

const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/gi;
const MENTION_RE = /(^|[^A-Za-z0-9_.@-])@([A-Za-z0-9_.-]{1,32})/g;

/** http(s) links in `text`: [{start, end, href, label}] */
function findLinks(text) {
  const out = [];
  for (const m of text.matchAll(URL_RE)) {
    let raw = m[0];
    // Strip trailing punctuation, but keep a closing bracket that has its opener in the URL.
    for (;;) {
      const c = raw[raw.length - 1];
      const open = { ')': '(', ']': '[', '}': '{' }[c];
      if (open ? count(raw, open) < count(raw, c) : '.,;:!?\'"*_~>'.includes(c)) raw = raw.slice(0, -1);
      else break;
    }
    let url;
    try { url = new URL(raw); } catch { continue; }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') continue;
    out.push({ start: m.index, end: m.index + raw.length, href: url.href, label: raw });
  }
  return out;
}

const count = (s, c) => s.split(c).length - 1;

/** Appends `text` to `el` as text nodes, with @mentions wrapped. */
function appendMentions(el, text, me) {
  let last = 0;
  for (const m of text.matchAll(MENTION_RE)) {
    const name = m[2].replace(/\.+$/, '');
    const at = m.index + m[1].length;
    if (at > last) el.append(text.slice(last, at));
    const mine = me && name.toLowerCase() === me.toLowerCase();
    el.append(h('span.mention' + (mine ? '.me' : ''), null, '@' + name));
    last = at + 1 + name.length;
  }
  if (last < text.length) el.append(text.slice(last));
}

/** The body of a message: text nodes, safe links, highlighted mentions. */
export function messageText(text, me) {
  const el = h('div.text');
  let last = 0;
  for (const l of findLinks(text)) {
    if (l.start > last) appendMentions(el, text.slice(last, l.start), me);
    el.append(h('a', { href: l.href, target: '_blank', rel: 'noopener noreferrer' }, l.label));
    last = l.end;
  }
  if (last < text.length) appendMentions(el, text.slice(last), me);
  return el;
}

export function mentions(text, me) {
  if (!me) return false;
  const want = me.toLowerCase();
  for (const m of text.matchAll(MENTION_RE)) {
    if (m[2].replace(/\.+$/, '').toLowerCase() === want) return true;
  }
  return false;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });
const dayYearFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });

export const timeOf = (ts) => timeFmt.format(ts);
export const dayKey = (ts) => { const d = new Date(ts); return d.getFullYear() * 10000 + d.getMonth() * 100 + d.getDate(); };

export function dayLabel(ts) {
  const now = new Date();
  const k = dayKey(ts);
  if (k === dayKey(now)) return 'Today';
  if (k === dayKey(now.getTime() - 86400000)) return 'Yesterday';
  return (new Date(ts).getFullYear() === now.getFullYear() ? dayFmt : dayYearFmt).format(ts);
}

export function daySeparator(ts) {
  return h('div.day', { role: 'separator' }, h('span', null, dayLabel(ts)));
}

function timeEl(ts, cls) {
  return h('time' + (cls ? '.' + cls : ''), { datetime: new Date(ts).toISOString(), title: fullFmt.format(ts) }, timeOf(ts));
}

/**
 * One message row. `cont`: a follow-up from the same author (no header).
 * `opts`: {me, mine, canDelete, onDelete, pending: {state, reason, onRetry}}
 */
export function messageRow(m, cont, opts) {
  const mine = opts.mine;
  const row = h('div.msg' + (cont ? '.cont' : '') + (mine ? '.mine' : ''), { 'data-id': m.id ?? '' });
  if (!mine && mentions(m.text, opts.me)) row.classList.add('mention-row');
  const gutter = h('div.gutter', null, cont ? timeEl(m.ts, 'side-time') : avatar(m.user));
  const body = h('div.body');
  if (!cont) body.append(h('div.meta', null, h('span.author', null, m.user), timeEl(m.ts)));
  body.append(messageText(m.text, opts.me));
  row.append(gutter, body);
  const p = opts.pending;
  if (p) {
    row.classList.add(p.state);
    row.dataset.nonce = p.nonce;
    if (p.state === 'failed') {
      body.append(h('div.status.fail', null, icon('x'), h('span', null, p.reason || 'Not sent'),
        h('button.link-btn', { type: 'button', onclick: p.onRetry }, icon('retry'), 'Retry'),
        h('button.link-btn', { type: 'button', onclick: p.onDiscard }, 'Discard')));
    } else {
      body.append(h('div.status', { title: 'Sending…' }, icon('clock'), h('span', null, p.queued ? 'Waiting for connection…' : 'Sending…')));
    }
  } else if (opts.canDelete) {
    row.append(h('div.actions', null,
      h('button.icon-btn.sm', { type: 'button', title: 'Delete message', 'aria-label': 'Delete message', onclick: () => opts.onDelete(m) }, icon('trash'))));
  }
  return row;
}
