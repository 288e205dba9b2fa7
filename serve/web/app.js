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
