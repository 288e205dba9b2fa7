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
  // Where the source enters: the uplinks first, then every other interface.
  const ingress = document.getElementById('ingress');
  const uplinks = cfg.uplinks || [];
  const group = (label, vals) => tsim.el('optgroup', { label }, ...vals.map((v) => tsim.el('option', { value: v }, v)));
  if (uplinks.length) ingress.append(group('Uplinks (traffic from outside enters here)', uplinks));
  ingress.append(group('Other router interfaces', (cfg.ingress || []).filter((v) => !uplinks.includes(v))));
  document.getElementById('trace-limit').textContent = 'At most ' + Math.round(cfg.max_trace / 1000) + ' kB.';
  document.getElementById('flows-limit').textContent = 'At most ' + cfg.max_flows + ' flows.';
  // Uploaded files, read as text and sent in the JSON body.
  const upload = { trace: '', flows: '' };
  const pick = (inputId, key, shownId, what) => {
    const input = document.getElementById(inputId), shown = document.getElementById(shownId);
    input.addEventListener('change', async () => {
      const f = input.files[0];
      upload[key] = f ? await f.text() : '';
      shown.textContent = f ? what + ' ' + f.name + ' loaded (' + f.size + ' bytes).' : '';
      shown.hidden = !f;
    });
  };
  pick('trace-file', 'trace', 'trace-loaded', 'Trace');
  pick('flows-file', 'flows', 'flows-loaded', 'Flows file');
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
  form.addEventListener('reset', () => {
    upload.trace = upload.flows = '';
    document.getElementById('trace-loaded').hidden = true;
    document.getElementById('flows-loaded').hidden = true;
    document.getElementById('count').textContent = '';
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const btn = document.getElementById('run'), box = document.getElementById('error');
    box.hidden = true;
    btn.disabled = true; // one click, one job
    btn.textContent = 'Submitting…';
    let body = { src: document.getElementById('src').value.trim(), dst: document.getElementById('dst').value.trim(), services: spec() };
    const sp = document.getElementById('sport').value;
    if (sp) body.sport = Number(sp);
    if (ingress.value) body.ingress = ingress.value;
    if (upload.trace) body.trace = upload.trace;
    if (upload.flows) body = { flows_csv: upload.flows }; // the file carries everything
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
