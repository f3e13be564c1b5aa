// Server administration: overview, people, sign-ups and invitations.
// Loaded on first use, only offered to the server administrator.

import { $, h, icon, avatar } from './dom.js';

const notBuilt = 'The administration console is not available on this server version yet.';

function bytes(n) {
  if (!(n >= 0)) return '—';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(n < 10 ? 1 : 0) : n) + ' ' + u[i];
}

function duration(s) {
  if (!(s >= 0)) return '—';
  const d = Math.floor(s / 86400);
  const hrs = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return d ? `${d} d ${hrs} h` : hrs ? `${hrs} h ${m} min` : `${m} min`;
}

const when = (ts) => (ts ? new Date(ts).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }) : 'never');

export function openAdmin(c) {
  const dlg = $('dlg-admin');
  const body = $('admin-body');
  const tabs = [...dlg.querySelectorAll('[role=tab]')];
  let tab = 'overview';
  let seq = 0;

  const fail = (e) => h('p.hint', null, e.missing ? notBuilt : `Could not load: ${e.message}`);
  const loading = () => h('p.hint', null, h('span.spinner'), 'Loading…');

  async function show(name) {
    tab = name;
    const my = ++seq;
    for (const t of tabs) t.setAttribute('aria-selected', String(t.dataset.tab === name));
    body.replaceChildren(loading());
    let view;
    try {
      view = await VIEWS[name]();
    } catch (e) {
      view = fail(e);
    }
    if (my === seq) body.replaceChildren(view);
  }

  async function overview() {
    const o = await c.api('GET', '/api/admin/overview');
    const stat = (label, value) => h('div.stat', null, h('span.stat-value', null, String(value ?? '—')), h('span.stat-label', null, label));
    return h('div.stats', null,
      stat('People', o.users), stat('Online now', o.online_users), stat('Rooms', o.rooms),
      stat('Messages', o.messages), stat('Connections', o.connections), stat('Database', bytes(o.db_bytes)),
      o.direct_conversations != null ? stat('Conversations', o.direct_conversations) : null,
      stat('Up for', duration(o.uptime_s)), stat('Version', o.version));
  }

  async function users() {
    const { users: list } = await c.api('GET', '/api/admin/users');
    const msg = h('p.form-error', { role: 'alert' });
    const update = async (u, patch, done) => {
      msg.textContent = '';
      try {
        await c.api('PUT', `/api/admin/users/${c.seg(u.name)}`, patch);
        c.toast(done);
        show('users');
      } catch (e) {
        msg.textContent = e.missing ? notBuilt : e.message;
      }
    };
    const resetPassword = (u, row) => {
      const form = h('form.row.reset', {
        onsubmit: async (e) => {
          e.preventDefault();
          const password = form.password.value;
          if (password.length < 8) { msg.textContent = 'Passwords need 8 characters or more.'; return; }
          try {
            await c.api('POST', `/api/admin/users/${c.seg(u.name)}/password`, { password });
            c.toast(`New password set for ${u.name}. Their other sessions are signed out.`);
            form.remove();
          } catch (ex) {
            msg.textContent = ex.missing ? notBuilt : ex.message;
          }
        },
      },
      h('label.grow', null, h('span.sr-only', null, `New password for ${u.name}`),
        h('input', { name: 'password', type: 'password', autocomplete: 'new-password', minlength: 8, placeholder: `New password for ${u.name}` })),
      h('button.btn.sm.primary', { type: 'submit' }, 'Set'),
      h('button.btn.sm.ghost', { type: 'button', onclick: () => form.remove() }, 'Cancel'));
      row.after(form);
      form.password.focus();
    };
    const rows = list.map((u) => {
      const self = c.isMe(u.name);
      const row = h('li.member-row' + (u.disabled ? '.off' : ''), null,
        h('span.lead.presence' + (u.online ? '.on' : ''), null, avatar(u.name, 'sm')),
        h('span.name', null, u.name, self ? h('span.you', null, ' (you)') : null,
          u.disabled ? h('span.role.disabled', null, 'Disabled') : null),
        h('span.controls', null,
          h('select', {
            'aria-label': `Role of ${u.name}`,
            disabled: self,
            onchange: (e) => update(u, { role: e.target.value }, `${u.name} is now ${e.target.value === 'admin' ? 'an administrator' : 'a regular user'}.`),
          }, h('option', { value: 'user', selected: u.role !== 'admin' }, 'User'), h('option', { value: 'admin', selected: u.role === 'admin' }, 'Administrator')),
          h('button.btn.sm.ghost', { type: 'button', onclick: () => resetPassword(u, row) }, 'Password'),
          self ? null : h('button.btn.sm' + (u.disabled ? '' : '.danger-ghost'), {
            type: 'button',
            onclick: async () => {
              if (!u.disabled && !(await c.confirmBox(`Disable ${u.name}?`, `${u.name} is signed out everywhere and cannot log in until enabled again.`, 'Disable'))) return;
              update(u, { disabled: !u.disabled }, u.disabled ? `${u.name} can log in again.` : `${u.name} is disabled.`);
            },
          }, u.disabled ? 'Enable' : 'Disable')));
      return row;
    });
    return h('div', null, msg, h('ul.member-rows', null, rows));
  }

  async function signup() {
    const settings = await c.api('GET', '/api/admin/settings');
    const msg = h('p.form-error', { role: 'alert' });
    const choices = [
      ['open', 'Open', 'Anyone who can reach this server can create an account.'],
      ['invite', 'Invitation only', 'People need an invitation link from an administrator.'],
      ['closed', 'Closed', 'Nobody can sign up. Existing accounts keep working.'],
    ];
    const policy = h('fieldset.choices', {
      onchange: async (e) => {
        msg.textContent = '';
        try {
          await c.api('PUT', '/api/admin/settings', { signup: e.target.value });
          if (c.S.config) c.S.config.signup = e.target.value;
          c.toast('Sign-up setting saved.');
        } catch (ex) {
          msg.textContent = ex.missing ? notBuilt : ex.message;
        }
      },
    }, h('legend', null, 'Who can create an account'),
    choices.map(([v, title, text]) => h('label.choice', null,
      h('input', { type: 'radio', name: 'signup', value: v, checked: settings.signup === v }),
      h('span', null, h('strong', null, title), h('small', null, text)))));

    const invites = h('div', null, loading());
    const loadInvites = async () => {
      try {
        const { invites: list } = await c.api('GET', '/api/admin/invites');
        invites.replaceChildren(list.length ? h('ul.member-rows', null, list.map(inviteRow)) : h('p.hint', null, 'No open invitations.'));
      } catch (e) {
        invites.replaceChildren(fail(e));
      }
    };
    const linkOf = (inv) => new URL(inv.link || `/?invite=${encodeURIComponent(inv.code)}`, location.origin).href;
    const copy = async (text) => {
      try { await navigator.clipboard.writeText(text); c.toast('Link copied.'); } catch { c.toast('Select the link and copy it.'); }
    };
    const inviteRow = (inv) => {
      const usable = inv.usable !== false;
      const state = inv.used_by ? `Used by ${inv.used_by}` : !usable ? 'Expired'
        : inv.expires ? `Expires ${when(inv.expires)}` : 'Never expires';
      return h('li.member-row.invite' + (usable ? '' : '.off'), null,
      h('span.lead', null, icon('at')),
      h('span.name', null, usable ? h('input.link', { readonly: true, value: linkOf(inv), 'aria-label': 'Invitation link', onfocus: (e) => e.target.select() }) : h('span', null, inv.code),
        h('small', null, state)),
      h('span.controls', null,
        usable ? h('button.btn.sm', { type: 'button', onclick: () => copy(linkOf(inv)) }, 'Copy') : null,
        h('button.btn.sm.danger-ghost', {
          type: 'button',
          onclick: async () => {
            try { await c.api('DELETE', `/api/admin/invites/${c.seg(inv.code)}`); loadInvites(); } catch (e) { msg.textContent = e.missing ? notBuilt : e.message; }
          },
        }, usable ? 'Revoke' : 'Remove')));
    };
    const expiry = h('select', { 'aria-label': 'Invitation expires after' },
      h('option', { value: '24' }, '1 day'), h('option', { value: '168', selected: true }, '7 days'), h('option', { value: '720' }, '30 days'), h('option', { value: '' }, 'Never'));
    const create = h('form.row', {
      onsubmit: async (e) => {
        e.preventDefault();
        msg.textContent = '';
        try {
          const payload = expiry.value ? { expires_in_hours: Number(expiry.value) } : {};
          const { invite } = await c.api('POST', '/api/admin/invites', payload);
          copy(linkOf(invite));
          loadInvites();
        } catch (ex) {
          msg.textContent = ex.missing ? notBuilt : ex.message;
        }
      },
    }, h('label.inline', null, 'Expires after', expiry), h('button.btn.primary', { type: 'submit' }, icon('plus'), 'New invitation link'));
    loadInvites();
    return h('div.stack', null, h('section.panel', null, policy), msg,
      h('section.panel', null, h('h3', null, 'Invitations'), h('p.hint', null, 'Share a link with someone you want here: it opens the sign-up form with the code filled in.'), create, invites));
  }

  const VIEWS = { overview, users, signup };
  for (const t of tabs) t.onclick = () => show(t.dataset.tab);
  c.openDialog(dlg);
  show(tab);
}
