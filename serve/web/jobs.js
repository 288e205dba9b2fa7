'use strict';
(async () => {
  try { await tsim.header(); } catch (e) { return; }
  const $ = (id) => document.getElementById(id);
  const limit = 25;
  let offset = 0;
  // The verdict of a finished job: "1 of 2 reachable" in green only when
  // everything is reachable, never a green "done" for a blocked test.
  const verdict = (j) => {
    if (!j.result) return '';
    const r = j.result;
    const text = j.batch ? (r.passed || 0) + ' passed, ' + (r.failed || 0) + ' failed' + (r.unknown ? ', ' + r.unknown + ' unknown' : '') : r.summary;
    const good = j.batch ? !r.failed && !r.unknown : r.reachable;
    return tsim.el('span', { class: good ? 'verdict-good' : 'verdict-bad' }, text);
  };
  const load = async () => {
    const res = await tsim.api('GET', '/api/jobs?limit=' + limit + '&offset=' + offset);
    const jobs = res.jobs;
    $('empty').hidden = res.total > 0;
    $('jobs').replaceChildren(...jobs.map((j) => tsim.el('tr', {},
      tsim.el('td', {}, tsim.el('a', { href: '/job.html?id=' + j.id }, tsim.time(j.created))),
      tsim.el('td', {}, j.src + ' → ' + j.dst),
      tsim.el('td', {}, j.batch ? 'flows file (' + j.flows + ' flows)' : tsim.services(j)),
      tsim.el('td', {}, tsim.stateCell(j.state)),
      tsim.el('td', { class: 'verdict' }, verdict(j)),
      tsim.el('td', {}, Math.round(j.progress) + ' %'),
      tsim.el('td', {}, j.report ? tsim.el('a', { href: '/api/jobs/' + j.id + '/report.pdf?download=1' }, 'PDF') : ''))));
    $('page').textContent = res.total ? (offset + 1) + '–' + (offset + jobs.length) + ' of ' + res.total : '';
    $('newer').hidden = offset === 0;
    $('older').hidden = !res.next;
  };
  $('newer').addEventListener('click', () => { offset = Math.max(0, offset - limit); load(); });
  $('older').addEventListener('click', () => { offset += limit; load(); });
  await load();
  setInterval(() => load().catch(() => {}), 5000);
})();
