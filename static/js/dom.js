// Tiny DOM helpers. User text only ever enters the page as text nodes.

const SVG = 'http://www.w3.org/2000/svg';

export const $ = (id) => document.getElementById(id);

/** h('button.btn.primary', {type: 'button', onclick}, 'text', child...) */
export function h(tag, attrs, ...kids) {
  const [name, ...classes] = tag.split('.');
  const el = document.createElement(name || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className += (el.className ? ' ' : '') + v;
      else if (k === 'text') el.textContent = v;
      else if (k in el && typeof v !== 'string') el[k] = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const k of kids) {
    if (k == null || k === false) continue;
    if (Array.isArray(k)) append(el, k);
    else el.append(typeof k === 'string' || typeof k === 'number' ? document.createTextNode(String(k)) : k);
  }
}

/** An icon from the sprite in index.html. */
export function icon(name, cls) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('aria-hidden', 'true');
  if (cls) svg.setAttribute('class', cls);
  const use = document.createElementNS(SVG, 'use');
  use.setAttribute('href', '#i-' + name);
  svg.append(use);
  return svg;
}

export function show(el, on = true) { el.hidden = !on; }

let toastSeq = 0;
/** A short message at the bottom of the screen. */
export function toast(text, kind = 'info', ms = 4500) {
  const box = $('toasts');
  const t = h('div.toast.' + kind, { 'data-n': ++toastSeq }, text);
  box.append(t);
  setTimeout(() => t.classList.add('out'), ms);
  setTimeout(() => t.remove(), ms + 400);
}

/** Says something to screen readers without showing it. */
export function announce(text) {
  const a = $('announcer');
  a.textContent = '';
  // A fresh text node is what makes screen readers speak again.
  setTimeout(() => { a.textContent = text; }, 30);
}

/** Opens a <dialog> modally; [data-close] buttons inside close it. */
export function openDialog(dlg) {
  if (!dlg.dataset.wired) {
    dlg.dataset.wired = '1';
    dlg.addEventListener('click', (e) => {
      if (e.target.closest('[data-close]')) dlg.close();
      else if (e.target === dlg) dlg.close(); // a click on the backdrop
    });
  }
  for (const err of dlg.querySelectorAll('.form-error')) err.textContent = '';
  if (!dlg.open) dlg.showModal();
  return dlg;
}

/** A yes/no question in a dialog; resolves true on yes. */
export function confirmBox(title, text, yes = 'Confirm', danger = true) {
  const dlg = $('dlg-confirm');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  const btn = $('confirm-yes');
  btn.textContent = yes;
  btn.className = 'btn ' + (danger ? 'danger' : 'primary');
  dlg.returnValue = '';
  openDialog(dlg);
  btn.focus();
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'yes'), { once: true });
  });
}

/** Eight avatar colours, picked by a hash of the name. */
export function avatar(name, cls = '') {
  let hash = 0;
  for (const c of name.toLowerCase()) hash = (hash * 31 + c.codePointAt(0)) >>> 0;
  const first = [...name][0] || '?';
  return h('span.avatar.av' + (hash % 8) + (cls ? '.' + cls : ''), { 'aria-hidden': 'true' }, first.toUpperCase());
}
