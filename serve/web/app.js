'use strict';
// Shared helpers of every page: API calls, safe element building (text
// only, never innerHTML), the header with the user and logout.
const tsim = {
  async api(method, path, body) {
    const opt = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
    if (body !== undefined) {
      opt.headers['Content-Type'] = 'application/json';
      opt.body = JSON.stringify(body);
    }
    const r = await fetch(path, opt);
    let data = null;
    try { data = await r.json(); } catch (e) { /* not JSON */ }
    if (r.status === 401 && path !== '/api/login') {
      tsim.toLogin();
      const err = new Error('Your session has expired; please log in again.');
      err.status = 401;
      throw err;
    }
    if (!r.ok) {
      const err = new Error((data && data.error) || ('HTTP ' + r.status));
      err.status = r.status;
      throw err;
    }
    return data;
  },
  toLogin() {
    location.href = '/login.html?next=' + encodeURIComponent(location.pathname + location.search);
  },
  el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k == null ? '' : String(k)));
    return e;
  },
  time(s) { return s ? new Date(s).toLocaleString() : ''; },
  stateCell(st) { return tsim.el('span', { class: 'state state-' + st }, st); },
  services(j) { return j.services || 'icmp'; },
  // pathText renders a flow's path: host → router (in→out) → … .
  pathText(path) {
    return (path || []).map((h) => h.kind === 'router' ? h.node + ' (' + (h.in || '·') + '→' + (h.out || '·') + ')' : h.node).join(' → ');
  },
  // renderResult fills the result card of the job page.
  renderResult(j, $) {
    const r = j.result;
    $('verdict').textContent = r.reachable ? 'reachable' : 'not (fully) reachable';
    $('verdict').className = r.reachable ? 'good' : 'bad';
    $('summary').textContent = r.summary || '';
    $('flows').replaceChildren(...r.flows.map((f) => {
      const verdict = f.verdict || f.disposition || '';
      const ok = verdict === 'REACHABLE' || (!f.verdict && (f.disposition === 'DELIVERED' || f.disposition === 'EXITS_NETWORK'));
      const decided = tsim.el('td', { class: 'decided' });
      if (f.router) {
        decided.append(tsim.el('b', { class: 'router' }, f.router), ' ', tsim.el('code', { class: 'rule' }, f.rule || ''),
          f.where ? tsim.el('span', { class: 'hint' }, ' ' + f.where) : '',
          f.pos ? tsim.el('div', { class: 'pos' }, f.pos) : '');
      }
      if (f.live_rule && (f.live_router !== f.router || f.live_rule !== f.rule)) {
        decided.append(tsim.el('div', { class: 'hint' }, 'in the lab: ' + f.live_router + ' ' + f.live_rule));
      }
      const both = tsim.el('td', {}, (f.disposition || '?') + ' / ' + (f.verdict || '?'));
      if (f.agrees === false) both.append(tsim.el('div', { class: 'why' }, 'disagree: ' + (f.why || f.reason || '')));
      else if (f.reason && !ok) both.append(tsim.el('div', { class: 'hint' }, f.reason));
      return tsim.el('tr', { class: ok ? 'good' : 'bad', 'data-port': f.port },
        tsim.el('td', {}, f.service || f.port), tsim.el('td', {}, f.port),
        tsim.el('td', { class: 'verdict' }, verdict), decided, tsim.el('td', { class: 'path' }, tsim.pathText(f.path)), both);
    }));
  },
  // renderTests fills the flows-file table: one row per line, PENDING
  // until the probes answered, then PASS/FAIL/UNKNOWN (INFO: no expect).
  renderTests(tests, j, $) {
    $('lines').replaceChildren(...tests.map((l) => tsim.el('tr', { class: 'line-' + l.result.replace(' ', '-'), 'data-line': String(l.line) },
      tsim.el('td', {}, l.line), tsim.el('td', {}, l.src + ' → ' + l.dst), tsim.el('td', {}, l.spec),
      tsim.el('td', {}, l.expect || '–'), tsim.el('td', {}, l.got || ''), tsim.el('td', { class: 'result' }, l.result),
      tsim.el('td', {}, l.detail || ''))));
    $('lines-view').hidden = false;
    if (j && j.state === 'done' && j.links && j.links.junit) {
      $('junit').href = j.links.junit;
      $('junit-link').hidden = false;
    }
  },
  async header() {
    const me = await tsim.api('GET', '/api/me');
    document.getElementById('who').textContent = me.username + ' (' + me.role + ')';
    if (me.role === 'admin') document.getElementById('admin-link').hidden = false;
    document.getElementById('logout').addEventListener('click', async () => {
      try { await tsim.api('POST', '/api/logout'); } catch (e) { /* leave anyway */ }
      location.href = '/login.html';
    });
    return me;
  },
};
