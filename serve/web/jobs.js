'use strict';
(async () => {
  try { await tsim.header(); } catch (e) { return; }
  const load = async () => {
    const { jobs } = await tsim.api('GET', '/api/jobs');
    document.getElementById('empty').hidden = jobs.length > 0;
    document.getElementById('jobs').replaceChildren(...jobs.map((j) => tsim.el('tr', {},
      tsim.el('td', {}, tsim.el('a', { href: '/job.html?id=' + j.id }, tsim.time(j.created))),
      tsim.el('td', {}, j.src + ' → ' + j.dst),
      tsim.el('td', {}, tsim.services(j)),
      tsim.el('td', {}, tsim.stateCell(j.state)),
      tsim.el('td', {}, Math.round(j.progress) + ' %'),
      tsim.el('td', {}, j.report ? tsim.el('a', { href: '/api/jobs/' + j.id + '/report.pdf?download=1' }, 'PDF') : ''))));
  };
  await load();
  setInterval(() => load().catch(() => {}), 5000);
})();
