'use strict';
(async () => {
  const $ = (id) => document.getElementById(id);
  let me;
  try { me = await tsim.header(); } catch (e) { return; }
  const showErr = (msg) => { $('error').textContent = msg; $('error').hidden = !msg; };
  if (me.role !== 'admin') { showErr('This page is for administrators.'); return; }
  const cancel = (j) => tsim.el('button', { type: 'button', class: 'danger small', onclick: async () => {
    if (!confirm('Cancel job ' + j.id.slice(0, 12) + ' of ' + j.owner + '?')) return;
    try { await tsim.api('DELETE', '/api/jobs/' + j.id); load(); } catch (e) { showErr(e.message); }
  } }, 'Cancel');
  // A progress bar per running job (CSSOM width: CSP forbids style attributes).
  const minibar = (pct) => {
    const fill = tsim.el('div', {});
    fill.style.width = Math.max(0, Math.min(100, Math.round(pct || 0))) + '%';
    return tsim.el('span', { class: 'minibar', role: 'progressbar', 'aria-valuenow': String(Math.round(pct || 0)) }, fill);
  };
  const link = (j) => tsim.el('a', { href: '/job.html?id=' + j.id }, j.id.slice(0, 12));
  const load = async () => {
    const o = await tsim.api('GET', '/api/admin/overview');
    $('n-running').textContent = o.running.length;
    $('running').replaceChildren(...o.running.map((j) => tsim.el('tr', {}, tsim.el('td', {}, link(j)), tsim.el('td', {}, j.owner),
      tsim.el('td', {}, j.src + ' → ' + j.dst), tsim.el('td', {}, tsim.services(j)),
      tsim.el('td', {}, minibar(j.progress), Math.round(j.progress) + ' % ' + (j.message || '')), tsim.el('td', {}, tsim.time(j.started)), tsim.el('td', {}, cancel(j)))));
    $('n-queued').textContent = o.queued.length;
    $('queued').replaceChildren(...o.queued.map((j) => tsim.el('tr', {}, tsim.el('td', {}, j.queue_position || ''), tsim.el('td', {}, link(j)),
      tsim.el('td', {}, j.owner), tsim.el('td', {}, j.src + ' → ' + j.dst), tsim.el('td', {}, tsim.services(j)),
      tsim.el('td', {}, tsim.time(j.created)), tsim.el('td', {}, cancel(j)))));
    $('n-labs').textContent = o.labs.length;
    $('labs').replaceChildren(...o.labs.map((l) => tsim.el('tr', {}, tsim.el('td', {}, l.id),
      tsim.el('td', {}, l.job ? tsim.el('a', { href: '/job.html?id=' + l.job }, l.job.slice(0, 12)) : ''), tsim.el('td', {}, l.owner_pid),
      tsim.el('td', {}, tsim.time(l.created)), tsim.el('td', {}, (l.routers || []).length), tsim.el('td', {}, (l.hosts || []).length),
      tsim.el('td', {}, l.stale ? 'yes' : ''))));
    $('labs-error').textContent = o.labs_error || '';
    $('finished').replaceChildren(...o.finished.map((j) => tsim.el('tr', {}, tsim.el('td', {}, link(j)), tsim.el('td', {}, j.owner),
      tsim.el('td', {}, j.src + ' → ' + j.dst), tsim.el('td', {}, tsim.stateCell(j.state)), tsim.el('td', {}, tsim.time(j.finished)),
      tsim.el('td', {}, j.error || ''))));
    $('settings').textContent = 'Workers: ' + o.workers + ' · job time limit: ' + o.job_timeout + ' · retention: ' + o.retention +
      ' · queue limit: ' + o.max_queued + ' · unfinished jobs per user: ' + o.max_per_user + ' · jobs kept: ' + o.jobs_kept;
  };
  const loadUsers = async () => {
    const u = await tsim.api('GET', '/api/admin/users');
    $('users').replaceChildren(...u.users.map((x) => tsim.el('tr', {}, tsim.el('td', {}, x.name), tsim.el('td', {}, x.role),
      tsim.el('td', {}, tsim.time(x.created)),
      tsim.el('td', {}, x.name === me.username ? '' : tsim.el('button', { type: 'button', class: 'danger small', onclick: async () => {
        if (!confirm('Delete user ' + x.name + '?')) return;
        try { await tsim.api('DELETE', '/api/admin/users/' + encodeURIComponent(x.name)); loadUsers(); } catch (e) { showErr(e.message); }
      } }, 'Delete')))));
    $('external').textContent = u.external ? 'Users not listed here may log in through ' + u.external.toUpperCase() + '.' : '';
  };
  $('add-user').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await tsim.api('POST', '/api/admin/users', { name: $('new-name').value.trim(), role: $('new-role').value, password: $('new-password').value });
      $('add-user').reset();
      showErr('');
      loadUsers();
    } catch (e) { showErr(e.message); }
  });
  await Promise.all([load(), loadUsers()]);
  setInterval(() => load().catch((e) => showErr(e.message)), 3000);
})();
