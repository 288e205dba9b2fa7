'use strict';
// Progress of one job: SSE with the browser's own reconnect (it resends
// Last-Event-ID, the server replays what was missed), polling when the
// stream cannot be used, and a clear error view at the end.
(async () => {
  const $ = (id) => document.getElementById(id);
  const id = new URLSearchParams(location.search).get('id') || '';
  let last = 0, finished = false, es = null, poller = null;

  const fail = (msg) => {
    finished = true;
    if (es) es.close();
    if (poller) clearInterval(poller);
    $('error-text').textContent = msg;
    $('error-view').hidden = false;
    $('cancel').hidden = true;
  };
  try { await tsim.header(); } catch (e) { return; }
  if (!/^[0-9a-f]{32}$/.test(id)) { fail('This link has no valid job id.'); return; }
  $('job-id').textContent = id.slice(0, 12);

  const setBar = (pct, text) => {
    const p = Math.max(0, Math.min(100, pct || 0));
    $('bar').style.width = p + '%';
    $('bar-text').textContent = Math.round(p) + ' %' + (text ? ' — ' + text : '');
  };
  const logLine = (e) => {
    const t = new Date(e.time).toLocaleTimeString();
    const what = [e.stage, e.step, e.message].filter(Boolean).join(': ');
    const cls = e.state === 'failed' || e.state === 'cancelled' ? 'fail' : (e.state === 'done' ? 'good' : '');
    $('log').append(tsim.el('li', { class: cls }, '[' + t + '] ' + what));
    $('log').scrollTop = $('log').scrollHeight;
  };
  const setState = (st, pos) => {
    $('state').replaceChildren(tsim.stateCell(st), st === 'queued' && pos ? tsim.el('span', { id: 'queue-pos' }, ' (queue position ' + pos + ')') : '');
  };
  const render = (j) => {
    $('route').textContent = j.src + ' → ' + j.dst;
    $('services').textContent = tsim.services(j) + ' (' + j.flows + ' flow' + (j.flows === 1 ? '' : 's') + ')';
    if (j.batch) $('route').textContent = 'from the uploaded flows file';
    setState(j.state, j.queue_position);
    if (j.path_from) {
      $('path-from').textContent = 'given by the user (' + j.path_from + '): the simulation was skipped and the lab tested exactly this path';
      $('path-from-row').hidden = false;
    }
    $('created').textContent = tsim.time(j.created);
    $('cancel').hidden = !(j.state === 'queued' || j.state === 'running');
    setBar(j.progress, j.message || j.stage);
    if (j.batch && j.tests) tsim.renderTests(j.tests, j, $);
  };
  const finish = (j) => {
    finished = true;
    if (es) es.close();
    if (poller) clearInterval(poller);
    $('conn').textContent = '';
    render(j);
    if (j.result) {
      tsim.renderResult(j, $);
      $('result').hidden = false;
    }
    if (j.report) {
      const url = '/api/jobs/' + id + '/report.pdf';
      $('pdf-open').href = url;
      $('pdf-download').href = url + '?download=1';
      $('pdf').src = url;
      $('pdf-view').hidden = false;
    }
    if (j.state !== 'done') fail(j.error || ('The job ended as ' + j.state + '.'));
    else setBar(100, 'done');
  };
  const poll = async () => {
    try {
      const j = await tsim.api('GET', '/api/jobs/' + id);
      if (j.message && j.message !== poll.lastMsg) {
        logLine({ time: new Date().toISOString(), stage: j.stage, message: j.message, state: '' });
        poll.lastMsg = j.message;
      }
      if (['done', 'failed', 'cancelled'].includes(j.state)) finish(j); else render(j);
    } catch (e) {
      if (e.status === 404 || e.status === 400) fail('No such job (or it is not yours).');
      else $('conn').textContent = 'Cannot reach the server; retrying…';
    }
  };
  const startPolling = () => {
    if (poller || finished) return;
    $('conn').textContent = 'Live updates unavailable; checking every 2 s.';
    poller = setInterval(poll, 2000);
  };

  $('cancel').addEventListener('click', async () => {
    if (!confirm('Cancel this job? Its lab is removed.')) return;
    try { await tsim.api('DELETE', '/api/jobs/' + id); } catch (e) { $('conn').textContent = e.message; }
  });

  // First the current state (also tells us whether the job exists).
  try {
    const j = await tsim.api('GET', '/api/jobs/' + id);
    render(j);
  } catch (e) {
    fail(e.status === 404 ? 'No such job (or it is not yours).' : e.message);
    return;
  }
  if (!window.EventSource) { startPolling(); return; }
  es = new EventSource('/api/jobs/' + id + '/events');
  es.addEventListener('open', () => { $('conn').textContent = ''; });
  es.addEventListener('progress', (ev) => {
    const e = JSON.parse(ev.data);
    if (e.id <= last) return; // replayed after a reconnect
    last = e.id;
    logLine(e);
    if (e.state) setState(e.state, e.queue_position);
    if (e.tests) tsim.renderTests(e.tests, null, $);
    if (!e.state || e.state === 'running') setBar(e.percent, e.message || e.stage);
  });
  es.addEventListener('end', (ev) => finish(JSON.parse(ev.data)));
  es.addEventListener('error', () => {
    if (finished) return;
    if (es.readyState === EventSource.CLOSED) { es = null; startPolling(); poll(); }
    else $('conn').textContent = 'Connection lost; reconnecting…';
  });
})();
