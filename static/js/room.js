// Room settings and moderation: topic, visibility, members, roles, bans,
// leaving and deleting. Loaded on first use.

import { $, h, icon, avatar } from './dom.js';

const NAME_RE = /^[A-Za-z0-9_.-]{1,32}$/;
const notBuilt = 'Not available on this server yet.';

export async function openRoomSettings(c, k) {
  const { S } = c;
  const dlg = $('dlg-room');
  const body = $('room-dlg-body');
  let bans = null; // null: loading; string: error; array
  const errors = {};

  const room = () => S.rooms.get(k);
  const me = () => S.me;
  const iAmOwner = () => me().role === 'admin' || room().role === 'owner';

  async function act(section, fn, done) {
    errors[section] = '';
    try {
      await fn();
      if (done) c.toast(done);
    } catch (e) {
      errors[section] = e.missing ? notBuilt : e.message;
    }
    if (!S.rooms.has(k)) return;
    await c.refreshMembers(k);
    render();
  }

  const path = (...rest) => ['/api/rooms', c.seg(room().name), ...rest.map(c.seg)].join('/');

  function err(section) {
    return h('p.form-error', { role: 'alert' }, errors[section] || '');
  }

  function aboutSection(r, mod) {
    if (!mod) {
      return h('section.panel', null, h('h3', null, 'About'),
        h('p', null, r.topic || 'No topic.'),
        h('p.hint', null, r.visibility === 'private' ? 'Private room: only members can see it.' : 'Public room: anyone on this server can join.'));
    }
    const form = h('form.stack', {
      onsubmit: (e) => {
        e.preventDefault();
        const topic = form.topic.value.trim();
        const visibility = form.visibility.value;
        act('about', async () => {
          const { room: updated } = await c.api('PATCH', path(), { topic, visibility });
          c.setRoom(updated);
          c.renderSidebar();
          c.renderHeader();
        }, 'Room settings saved.');
      },
    },
    h('label', null, 'Topic', h('input', { name: 'topic', maxlength: 300, value: r.topic || '', autocomplete: 'off' })),
    h('fieldset.choices.inline', null, h('legend', null, 'Who can join'),
      ['public', 'private'].map((v) => h('label.choice', null,
        h('input', { type: 'radio', name: 'visibility', value: v, checked: r.visibility === v }),
        h('span', null, h('strong', null, v === 'public' ? 'Public' : 'Private'),
          h('small', null, v === 'public' ? 'Anyone can find and join.' : 'Only people you add.'))))),
    err('about'),
    h('div.row.end', null, h('button.btn.primary', { type: 'submit' }, 'Save changes')));
    return h('section.panel', null, h('h3', null, 'About'), form);
  }

  function memberRow(m, mod) {
    const self = c.isMe(m.name);
    const r = room();
    const canTouch = mod && !self && m.role !== 'owner' && (iAmOwner() || m.role === 'member');
    const controls = [];
    if (canTouch && iAmOwner()) {
      const sel = h('select', {
        'aria-label': `Role of ${m.name}`,
        onchange: async () => {
          const role = sel.value;
          if (role === 'owner') {
            const ok = await c.confirmBox('Hand over ownership?', `${m.name} becomes the owner of #${r.name}; you stay as an admin.`, 'Make owner', false);
            if (!ok) { sel.value = m.role; return; }
          }
          act('members', () => c.api('PUT', path('members', m.name), { role }), `${m.name} is now ${role === 'member' ? 'a member' : 'the ' + role}.`);
        },
      },
      h('option', { value: 'member', selected: m.role === 'member' }, 'Member'),
      h('option', { value: 'admin', selected: m.role === 'admin' }, 'Admin'),
      h('option', { value: 'owner' }, 'Owner'));
      controls.push(sel);
    } else if (m.role !== 'member') {
      controls.push(h('span.role.' + m.role, null, m.role === 'owner' ? 'Owner' : 'Admin'));
    }
    if (canTouch) {
      controls.push(h('button.btn.sm.ghost', {
        type: 'button',
        onclick: async () => {
          if (await c.confirmBox(`Remove ${m.name}?`, `${m.name} leaves #${r.name}; they can join again${r.visibility === 'private' ? ' if added back' : ''}.`, 'Remove')) {
            act('members', () => c.api('DELETE', path('members', m.name)), `${m.name} was removed.`);
          }
        },
      }, 'Remove'));
      controls.push(h('button.btn.sm.danger-ghost', {
        type: 'button',
        onclick: async () => {
          if (await c.confirmBox(`Ban ${m.name}?`, `${m.name} is removed from #${r.name} and cannot come back until unbanned.`, 'Ban')) {
            act('members', async () => { await c.api('POST', path('bans'), { user: m.name }); bans = null; loadBans(); }, `${m.name} was banned.`);
          }
        },
      }, 'Ban'));
    }
    return h('li.member-row', null,
      h('span.lead.presence' + (m.online ? '.on' : ''), null, avatar(m.name, 'sm')),
      h('span.name', null, m.name, self ? h('span.you', null, ' (you)') : null),
      h('span.controls', null, controls));
  }

  function membersSection(mod) {
    const list = S.members.get(k) || [];
    const kids = [h('h3', null, `Members (${list.length})`)];
    if (mod && !c.isDm(room())) {
      const form = h('form.row.add-member', {
        onsubmit: (e) => {
          e.preventDefault();
          const user = form.user.value.trim().replace(/^@/, '');
          if (!NAME_RE.test(user)) { errors.members = 'Type a username.'; render(); return; }
          act('members', () => c.api('POST', path('members'), { user }), `${user} was added.`);
        },
      },
      h('label.grow', null, h('span.sr-only', null, 'Username to add'), h('input', { name: 'user', placeholder: 'Add someone by username', list: 'known-users', autocomplete: 'off', autocapitalize: 'none', maxlength: 32 })),
      h('button.btn', { type: 'submit' }, icon('plus'), 'Add'));
      kids.push(form);
    }
    kids.push(err('members'));
    kids.push(h('ul.member-rows', null, list.map((m) => memberRow(m, mod))));
    return h('section.panel', null, kids);
  }

  async function loadBans() {
    try {
      const d = await c.api('GET', path('bans'));
      bans = d.bans || [];
    } catch (e) {
      bans = e.missing ? notBuilt : e.message;
    }
    render();
  }

  function bansSection() {
    const kids = [h('h3', null, 'Banned')];
    if (bans === null) kids.push(h('p.hint', null, 'Loading…'));
    else if (typeof bans === 'string') kids.push(h('p.hint', null, bans));
    else if (!bans.length) kids.push(h('p.hint', null, 'Nobody is banned.'));
    else {
      kids.push(h('ul.member-rows', null, bans.map((b) => h('li.member-row', null,
        h('span.lead', null, avatar(b.name, 'sm')), h('span.name', null, b.name),
        h('span.controls', null, h('button.btn.sm', {
          type: 'button',
          onclick: () => act('bans', async () => { await c.api('DELETE', path('bans', b.name)); await loadBans(); }, `${b.name} can join again.`),
        }, 'Unban'))))));
    }
    kids.push(err('bans'));
    return h('section.panel', null, kids);
  }

  function dangerSection(r) {
    const dm = c.isDm(r);
    const kids = [h('h3', null, dm ? 'Conversation' : 'Leave or delete')];
    kids.push(h('div.setting', null,
      h('div', null, h('strong', null, dm ? 'Leave this conversation' : 'Leave this room'),
        h('p.hint', null, dm ? 'It disappears from your list.' : r.visibility === 'private' ? 'You need to be added again to come back.' : 'You can join again from the room browser.')),
      h('button.btn.sm', {
        type: 'button',
        onclick: async () => {
          if (!(await c.confirmBox(dm ? 'Leave conversation?' : `Leave #${r.name}?`, dm ? 'It disappears from your list.' : 'You stop getting its messages.', 'Leave'))) return;
          if (!c.socket.send({ type: 'leave', room: r.name })) { c.toast('You are offline. Try again once reconnected.', 'error'); return; }
          dlg.close();
        },
      }, 'Leave')));
    if (!dm && iAmOwner()) {
      kids.push(h('div.setting', null,
        h('div', null, h('strong', null, 'Delete this room'), h('p.hint', null, 'Every message goes, for everyone. This cannot be undone.')),
        h('button.btn.sm.danger', {
          type: 'button',
          onclick: async () => {
            if (!(await c.confirmBox(`Delete #${r.name}?`, 'The room and all its messages are deleted for everyone. This cannot be undone.', 'Delete room'))) return;
            errors.danger = '';
            try {
              await c.api('DELETE', path());
              c.forgetRoom(k);
              c.renderSidebar();
              dlg.close();
              c.toast(`#${r.name} was deleted.`);
            } catch (e) {
              errors.danger = e.missing ? notBuilt : e.message;
              render();
            }
          },
        }, 'Delete room')));
    }
    kids.push(err('danger'));
    return h('section.panel', null, kids);
  }

  function render() {
    const r = room();
    if (!r) { dlg.close(); return; }
    const mod = c.canModerate(r) && !c.isDm(r);
    $('room-dlg-title').textContent = c.isDm(r) ? `Conversation with ${c.titleOf(r)}` : `#${r.name}`;
    const focused = document.activeElement && dlg.contains(document.activeElement) ? document.activeElement.name : null;
    body.replaceChildren(
      c.isDm(r) ? null : aboutSection(r, mod),
      membersSection(mod),
      mod ? bansSection() : null,
      dangerSection(r),
    );
    if (focused) body.querySelector(`[name="${focused}"]`)?.focus();
  }

  render();
  c.openDialog(dlg);
  if (c.canModerate(room()) && !c.isDm(room())) loadBans();
  await c.refreshMembers(k);
  if (dlg.open) render();
}
