'use strict';
(async () => {
  try { await tsim.header(); } catch (e) { return; }
  const cfg = await tsim.api('GET', '/api/config');
  const picker = document.getElementById('picker');
  for (const g of cfg.groups) {
    const boxes = g.services.map((s) => tsim.el('input', { type: 'checkbox', value: s, name: 'svc' }));
    const all = tsim.el('button', { type: 'button', class: 'small', onclick: () => {
      const on = !boxes.every((b) => b.checked);
      boxes.forEach((b) => { b.checked = on; });
      count();
    } }, 'all');
    picker.append(tsim.el('fieldset', {}, tsim.el('legend', {}, g.name, all),
      ...boxes.map((b) => tsim.el('label', {}, b, ' ' + b.value))));
  }
  document.getElementById('limit').textContent = 'At most ' + cfg.max_services + ' services per test.';
  document.getElementById('facts').textContent = 'Facts: ' + cfg.facts.source + ' (' + cfg.facts.routers + ' routers).';
  const form = document.getElementById('test-form');
  const spec = () => {
    const picked = [...document.querySelectorAll('input[name=svc]:checked')].map((b) => b.value);
    const free = document.getElementById('spec').value.trim();
    if (free) picked.push(free);
    return picked.join(',');
  };
  const count = () => {
    const n = document.querySelectorAll('input[name=svc]:checked').length;
    document.getElementById('count').textContent = n ? n + ' service(s) picked' : '';
  };
  picker.addEventListener('change', count);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const btn = document.getElementById('run'), box = document.getElementById('error');
    box.hidden = true;
    btn.disabled = true; // one click, one job
    btn.textContent = 'Submitting…';
    const body = { src: document.getElementById('src').value.trim(), dst: document.getElementById('dst').value.trim(), services: spec() };
    const sp = document.getElementById('sport').value;
    if (sp) body.sport = Number(sp);
    try {
      const r = await tsim.api('POST', '/api/jobs', body);
      location.href = '/job.html?id=' + encodeURIComponent(r.id);
    } catch (e) {
      box.textContent = e.message;
      box.hidden = false;
      btn.disabled = false;
      btn.textContent = 'Run test';
    }
  });
})();
