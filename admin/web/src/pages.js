// The pages: Overview, a queue, Dead letters, Find a task, Hosts, and the login form.
// Each page renders into `main` and returns its clean-up (listeners, charts, timers).
// Text from the server is only ever set as textContent, never parsed as HTML.
import { api, get, q } from './api.js';
import { LiveChart } from './charts.js';

// ---- little helpers -------------------------------------------------------------------
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c != null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

const nf = new Intl.NumberFormat('en');
export const num = (v) => (v == null ? '–' : nf.format(Math.round(v)));
const rate = (v) => (v == null ? '–' : v >= 100 ? nf.format(Math.round(v)) : v.toFixed(1));
export function dur(ms) {
  if (ms == null || Number.isNaN(ms)) return '–';
  if (ms === 0) return '0';
  if (ms < 1) return ms.toFixed(2) + ' ms';
  if (ms < 1000) return ms.toFixed(ms < 10 ? 1 : 0) + ' ms';
  return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + ' s';
}
const bytes = (b) => (b >= 1 << 30 ? (b / (1 << 30)).toFixed(2) + ' GiB' : b >= 1 << 20 ? (b / (1 << 20)).toFixed(1) + ' MiB' : (b / 1024).toFixed(0) + ' KiB');
export const when = (unix) => (unix ? new Date(unix * 1000).toLocaleString('en-GB', { hour12: false }) : '–');

function pretty(payload) {
  if (payload == null) return '';
  try { return JSON.stringify(JSON.parse(payload), null, 2); } catch { return String(payload); }
}

function notice(main, text, kind = 'info') {
  const p = h('p', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
  main.prepend(p);
  setTimeout(() => p.remove(), 8000);
  return p;
}

export function showError(main, e) {
  main.append(h('p', { class: 'notice error', role: 'alert' }, e.message || String(e)));
}

export function notFound(main) {
  main.append(h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '#/' }, 'Back to the overview')));
}

// ---- login ------------------------------------------------------------------------------
export function loginForm(main, message, submit) {
  main.replaceChildren();
  const input = h('input', { id: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const err = h('p', { class: 'notice error', role: 'alert', hidden: !message }, message || '');
  const form = h('form', { class: 'login', onsubmit: async (ev) => {
    ev.preventDefault();
    const problem = await submit(input.value);
    if (problem) { err.textContent = problem; err.hidden = false; input.select(); }
  } },
  h('h1', {}, 'Log in'),
  h('p', {}, 'This server has requirepass set: enter it to see and steer the queues.'),
  h('label', { for: 'password' }, 'Password'), input,
  h('button', { type: 'submit', class: 'primary' }, 'Log in'), err);
  main.append(form);
  input.focus();
}

// ---- overview ----------------------------------------------------------------------------
const COLS = [
  ['pending', 'Pending', (x) => num(x.pending)],
  ['in_flight', 'In flight', (x) => num(x.in_flight)],
  ['retrying', 'Retrying', (x) => num(x.retrying)],
  ['scheduled', 'Scheduled', (x) => num(x.scheduled)],
  ['dead', 'Dead', (x) => (x.shared ? '–' : num(x.dead_list))],
  ['delivered_ps', 'Delivered/s', (x) => rate(x.delivered_per_s)],
  ['failed_ps', 'Failed/s', (x) => rate(x.failed_per_s)],
  ['delay', 'Dispatch delay p50 / p99', (x) => `${dur(x.dispatch_delay_p50_ms)} / ${dur(x.dispatch_delay_p99_ms)}`],
  ['duration', 'Request p50 / p99', (x) => `${dur(x.request_duration_p50_ms)} / ${dur(x.request_duration_p99_ms)}`],
];

function serverFigures(doc) {
  const link = doc.link;
  const mirror = !link.configured ? 'not configured'
    : `${link.status || (link.connected ? 'connected' : 'down')}${link.mirror_enabled ? `, mirror ${link.mirror_state} (lag ${num(link.lag_commands)})` : ''}`;
  const aof = !doc.aof.enabled ? 'off'
    : `${bytes(doc.aof.current_size)}${doc.aof.last_write_ok ? '' : ', last write FAILED'}${doc.aof.rewrite_in_progress ? ', rewriting' : ''}`;
  return [
    ['Clients', `${num(doc.clients.connected)} (${num(doc.clients.blocked)} blocked)`],
    ['Memory', bytes(doc.used_memory)],
    ['AOF', aof],
    ['Redis link', mirror],
    ['Version', doc.version],
  ];
}

function fillDl(dl, pairs) {
  dl.replaceChildren(...pairs.map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v))));
}

function historyCharts(container, hist, perQueue) {
  const charts = {
    rate: new LiveChart(container, { title: 'Delivered and failed per second', series: [{ label: 'delivered/s' }, { label: 'failed/s' }] }),
    backlog: new LiveChart(container, { title: 'Backlog', series: [{ label: 'pending' }, { label: 'in flight' }, { label: 'retrying' }, { label: 'dead' }] }),
  };
  if (perQueue) charts.latency = new LiveChart(container, { title: 'Dispatch delay and request duration (median)', series: [{ label: 'delay' }, { label: 'duration' }], unit: ' ms' });
  charts.rate.setData(hist.t, [hist.delivered_per_s, hist.failed_per_s]);
  charts.backlog.setData(hist.t, [hist.pending, hist.in_flight, hist.retrying, hist.dead]);
  if (charts.latency) charts.latency.setData(hist.t, [hist.dispatch_delay_p50_ms, hist.request_duration_p50_ms]);
  return charts;
}

function sum(queues, f) {
  let s = 0, any = false;
  for (const x of queues) { const v = f(x); if (v != null) { s += v; any = true; } }
  return any ? s : null;
}

export async function overview(main, _args, ctx) {
  const [doc, hist] = await Promise.all([ctx.figures(), get('/api/history')]);
  const dl = h('dl', { class: 'figures' });
  const chartsBox = h('div', { class: 'charts' });
  const tbody = h('tbody');
  const caption = h('caption', {}, 'Queues');
  const table = h('table', { class: 'queues' }, caption,
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Queue'), h('th', { scope: 'col' }, 'State'),
      COLS.map(([, label]) => h('th', { scope: 'col' }, label)))), tbody);
  main.append(h('h1', {}, 'Overview'), h('section', { 'aria-label': 'Server' }, dl),
    h('section', { 'aria-label': 'Charts' }, chartsBox), h('div', { class: 'scroll' }, table));
  const charts = historyCharts(chartsBox, hist, false);
  const rows = new Map();

  function render(d) {
    fillDl(dl, serverFigures(d));
    caption.textContent = `Queues (${d.queues.length})`;
    const seen = new Set();
    for (const x of d.queues) {
      seen.add(x.name);
      let row = rows.get(x.name);
      if (!row) {
        const cells = {};
        const state = h('td', { 'data-col': 'state' });
        const tr = h('tr', { 'data-queue': x.name },
          h('th', { scope: 'row' }, h('a', { href: `#/queue/${q(x.name)}` }, x.name), x.shared ? h('span', { class: 'tag' }, 'shared') : null),
          state, COLS.map(([key]) => (cells[key] = h('td', { 'data-col': key, class: 'n' }))));
        row = { tr, cells, state };
        rows.set(x.name, row);
        tbody.append(tr);
      }
      const st = x.paused ? 'paused' : 'running';
      if (row.state.textContent !== st) row.state.replaceChildren(h('span', { class: `state ${st}` }, st));
      for (const [key, , f] of COLS) {
        const v = f(x);
        if (row.cells[key].textContent !== v) row.cells[key].textContent = v;
      }
    }
    for (const [name, row] of rows) if (!seen.has(name)) { row.tr.remove(); rows.delete(name); }
  }
  render(doc);
  performance.mark('respq:overview-rendered');
  const onFigures = (ev) => {
    const d = ev.detail;
    render(d);
    charts.rate.push(d.t, [sum(d.queues, (x) => x.delivered_per_s), sum(d.queues, (x) => x.failed_per_s)]);
    charts.backlog.push(d.t, [sum(d.queues, (x) => x.pending), sum(d.queues, (x) => x.in_flight), sum(d.queues, (x) => x.retrying), sum(d.queues, (x) => x.dead_list)]);
  };
  ctx.bus.addEventListener('figures', onFigures);
  return () => { ctx.bus.removeEventListener('figures', onFigures); Object.values(charts).forEach((c) => c.destroy()); };
}

// ---- one queue -----------------------------------------------------------------------------
function outcomeRow(o) {
  const t = o.__t ? new Date(o.__t).toLocaleTimeString('en-GB', { hour12: false }) : '';
  return h('tr', { class: o.status },
    h('td', {}, t), h('td', {}, h('a', { href: `#/task/${q(o.id)}` }, o.id)), h('td', {}, o.status),
    h('td', { class: 'n' }, o.code ? String(o.code) : '–'), h('td', { class: 'n' }, dur(o.duration_ms)),
    h('td', {}, o.attempts != null ? String(o.attempts) : ''), h('td', { class: 'err' }, o.error || ''));
}

const outcomeHead = () => h('thead', {}, h('tr', {}, ['Time', 'Task id', 'Outcome', 'Code', 'Duration', 'Attempt', 'Error'].map((c) => h('th', { scope: 'col' }, c))));

export async function queue(main, [name], ctx) {
  const [all, hist, doc] = await Promise.all([get('/api/queues'), get(`/api/history?queue=${q(name)}`), ctx.figures()]);
  const view = (all.queues || []).find((x) => x.name === name);
  if (!view) return notFound(main);
  const state = h('span', { class: 'state', role: 'status' });
  const pause = h('button', { type: 'button', onclick: () => setPaused(true) }, 'Pause');
  const resume = h('button', { type: 'button', onclick: () => setPaused(false) }, 'Resume');
  async function setPaused(p) {
    try {
      await api('POST', `/api/queues/${q(name)}/${p ? 'pause' : 'resume'}`);
      show({ ...current, paused: p });
    } catch (e) { notice(main, e.message, 'error'); }
  }
  const opts = view.options || {};
  const optionsDl = h('dl', { class: 'figures' });
  fillDl(optionsDl, [
    ['Concurrency', String(opts.concurrency)], ['Rate', opts.rate ? `${opts.rate}/s` : 'unlimited'],
    ['Per host', opts.per_host ? String(opts.per_host) : 'unlimited'],
    ['Rate per host', opts.host_rate ? `${opts.host_rate}/s` : 'unlimited'], ['Timeout', `${opts.timeout} s`],
    ['Retries', String(opts.retries)], ['Backoff', `${opts.backoff_min}–${opts.backoff_max} s`], ['Shared', opts.shared ? 'yes' : 'no']]);
  const figDl = h('dl', { class: 'figures' });
  const chartsBox = h('div', { class: 'charts' });
  const live = h('tbody');
  const liveNote = h('p', { class: 'note', hidden: true });
  const failures = h('tbody');
  main.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, 'Overview'), ' › ', name),
    h('div', { class: 'title' }, h('h1', {}, `Queue ${name}`), state, pause, resume,
      view.shared ? null : h('a', { href: `#/dead/${q(name)}`, class: 'button' }, 'Dead letters')),
    h('section', { 'aria-label': 'Figures' }, figDl),
    h('section', { 'aria-label': 'Charts' }, chartsBox),
    h('details', { class: 'options' }, h('summary', {}, 'Options'), optionsDl),
    h('section', {}, h('h2', { id: 'live-h' }, 'Live outcomes'), liveNote,
      h('div', { class: 'scroll' }, h('table', { 'aria-labelledby': 'live-h', class: 'outcomes' }, outcomeHead(), live))),
    h('section', {}, h('h2', { id: 'fail-h' }, 'Recent failures'),
      h('div', { class: 'scroll' }, h('table', { 'aria-labelledby': 'fail-h', class: 'outcomes' }, outcomeHead(), failures))));
  let current = doc.queues.find((x) => x.name === name) || view;
  function show(x) {
    current = x;
    state.textContent = x.paused ? 'paused' : 'running';
    state.className = `state ${x.paused ? 'paused' : 'running'}`;
    pause.disabled = !!x.paused;
    resume.disabled = !x.paused;
    fillDl(figDl, [
      ['Pending', num(x.pending)], ['In flight', num(x.in_flight)], ['Retrying', num(x.retrying)],
      ['Scheduled', num(x.scheduled)], ['Dead letters', num(x.dead_list)],
      ['Delivered', num(x.delivered)], ['Failed', num(x.failed)],
      ['Delivered/s', rate(x.delivered_per_s)], ['Failed/s', rate(x.failed_per_s)],
      ['Dispatch delay p50 / p99', `${dur(x.dispatch_delay_p50_ms)} / ${dur(x.dispatch_delay_p99_ms)}`],
      ['Request p50 / p99', `${dur(x.request_duration_p50_ms)} / ${dur(x.request_duration_p99_ms)}`]]);
  }
  show(current);
  const charts = historyCharts(chartsBox, hist, true);
  // Recent failures: the newest dead letters, then failures as they happen.
  if (!view.shared) {
    try {
      const dead = await get(`/api/queues/${q(name)}/dead?limit=20`);
      for (const d of dead.items) failures.append(outcomeRow({ id: d.id, status: 'dead', code: d.code, attempts: d.attempts, error: d.error || d.reason, __t: d.failed_at * 1000 }));
    } catch (e) { /* shown as an empty table */ }
  }
  const onFigures = (ev) => {
    const x = ev.detail.queues.find((y) => y.name === name);
    if (!x) return;
    show(x);
    charts.rate.push(ev.detail.t, [x.delivered_per_s, x.failed_per_s]);
    charts.backlog.push(ev.detail.t, [x.pending, x.in_flight, x.retrying, x.dead_list]);
  };
  let skipped = 0;
  const onSkipped = (ev) => {
    skipped += ev.detail.skipped;
    liveNote.textContent = `Showing at most 20 outcomes a second: ${num(skipped)} more since this page opened are counted above, not listed.`;
    liveNote.hidden = false;
  };
  const onOutcome = (ev) => {
    const o = ev.detail;
    if (o.queue !== name) return;
    o.__t = Date.now();
    live.prepend(outcomeRow(o));
    while (live.children.length > 100) live.lastChild.remove();
    if (o.status === 'retrying' || o.status === 'dead') {
      failures.prepend(outcomeRow(o));
      while (failures.children.length > 50) failures.lastChild.remove();
    }
  };
  ctx.bus.addEventListener('figures', onFigures);
  ctx.bus.addEventListener('outcome', onOutcome);
  ctx.bus.addEventListener('skipped', onSkipped);
  return () => {
    ctx.bus.removeEventListener('figures', onFigures);
    ctx.bus.removeEventListener('outcome', onOutcome);
    ctx.bus.removeEventListener('skipped', onSkipped);
    Object.values(charts).forEach((c) => c.destroy());
  };
}

// ---- dead letters ----------------------------------------------------------------------------
// The host filter's value for the letters whose payload names no host (not a task, no URL):
// the server's no_host (tasks/control.hpp). Without it such a group's link and Replay
// carried no host at all, and selected every host's letters with that code.
const NO_HOST = '-';
export async function dead(main, [name, ...rest], ctx) {
  const doc = await ctx.figures();
  const local = doc.queues.filter((x) => !x.shared).map((x) => x.name);
  main.append(h('h1', {}, 'Dead letters'));
  if (!local.length) { main.append(h('p', {}, 'No local HTTP queue.')); return; }
  if (!name || !local.includes(name)) name = local.includes('tasks') ? 'tasks' : local[0];
  const params = new URLSearchParams(rest.join('/'));
  const filter = { host: params.get('host') || '', code: params.get('code') ?? '', reason: params.get('reason') || '' };
  let offset = Number(params.get('offset') || 0);
  const LIMIT = 50;
  const select = h('select', { id: 'dead-queue', onchange: () => { location.hash = `#/dead/${q(select.value)}`; } },
    local.map((n) => h('option', { value: n, selected: n === name }, n)));
  const summary = h('p', { role: 'status' });
  const groups = h('tbody');
  const items = h('ol', { class: 'letters' });
  const pager = h('div', { class: 'pager' });
  main.append(
    h('div', { class: 'toolbar' }, h('label', { for: 'dead-queue' }, 'Queue'), select,
      h('button', { type: 'button', onclick: () => replay({}, 'every dead letter') }, 'Replay all')),
    summary,
    h('section', {}, h('h2', { id: 'groups-h' }, 'By host, code and reason'),
      h('div', { class: 'scroll' }, h('table', { 'aria-labelledby': 'groups-h', class: 'groups' },
        h('thead', {}, h('tr', {}, ['Host', 'Code', 'Count', 'Reasons', ''].map((c) => h('th', { scope: 'col' }, c)))), groups))),
    h('section', {}, h('h2', { id: 'items-h' }, 'Letters'), pager, items));

  function link(f, off = 0) {
    const p = new URLSearchParams();
    if (f.host) p.set('host', f.host);
    if (f.code !== '' && f.code != null) p.set('code', f.code);
    if (f.reason) p.set('reason', f.reason);
    if (off) p.set('offset', off);
    const s = p.toString();
    return `#/dead/${q(name)}${s ? '/' + s : ''}`;
  }

  async function replay(sel, what) {
    if (!(await ctx.confirm(`Replay ${what} of queue ${name}? They go back onto the queue at the replay rate.`, 'Replay'))) return;
    const p = new URLSearchParams();
    if (sel.id) p.set('id', sel.id);
    if (sel.host != null && sel.host !== '') p.set('host', sel.host);
    if (sel.code != null && sel.code !== '') p.set('code', sel.code);
    try {
      const r = await api('POST', `/api/queues/${q(name)}/dead/replay${p.toString() ? '?' + p : ''}`);
      notice(main, `Replaying ${num(r?.replaying ?? 0)} dead letter(s) at the queue's replay rate.`);
      setTimeout(load, 500);
    } catch (e) { notice(main, e.message, 'error'); }
  }

  async function remove(id) {
    if (!(await ctx.confirm(`Delete dead letter ${id} of queue ${name}? This can't be undone.`, 'Delete'))) return;
    try {
      await api('DELETE', `/api/queues/${q(name)}/dead/${q(id)}`);
      notice(main, `Deleted dead letter ${id}.`);
      load();
    } catch (e) { notice(main, e.message, 'error'); }
  }

  async function load() {
    const p = new URLSearchParams({ offset, limit: LIMIT });
    if (filter.host) p.set('host', filter.host);
    if (filter.code !== '') p.set('code', filter.code);
    if (filter.reason) p.set('reason', filter.reason);
    const d = await get(`/api/queues/${q(name)}/dead?${p}`);
    const filtered = filter.host || filter.code !== '' || filter.reason;
    summary.replaceChildren(`${num(d.total)} dead letters in ${name}`,
      filtered ? [`; ${num(d.matched)} match `, h('a', { href: link({}) }, 'show all')] : '');
    groups.replaceChildren(...d.groups.map((g) => {
      const label = `${g.host || '(no host)'} ${g.code || 'no HTTP answer'}`;
      return h('tr', {},
        h('td', {}, h('a', { href: link({ host: g.host || NO_HOST, code: String(g.code) }) }, g.host || '(no host)')),
        h('td', { class: 'n' }, g.code ? String(g.code) : 'none'),
        h('td', { class: 'n' }, num(g.count)),
        h('td', {}, h('ul', { class: 'reasons' }, g.reasons.map((r) => h('li', {},
          h('a', { href: link({ host: g.host || NO_HOST, code: String(g.code), reason: r.reason }) }, r.reason || '(none)'), ` ${num(r.count)}`)))),
        h('td', {}, h('button', { type: 'button', 'aria-label': `Replay group ${label}`, title: 'Replay this group',
          onclick: () => replay({ host: g.host || NO_HOST, code: String(g.code) }, `${num(g.count)} dead letters (host ${g.host || 'none'}, code ${g.code})`) }, 'Replay')));
    }));
    items.replaceChildren(...d.items.map((it) => h('li', { 'data-id': it.id },
      h('div', { class: 'head' }, h('strong', {}, it.id), ` ${when(it.failed_at)} · code ${it.code || 'none'} · ${it.host || 'no host'} · ${it.attempts} attempt(s)`),
      h('p', { class: 'err' }, [it.reason, it.error].filter(Boolean).join(': ')),
      it.response ? h('details', { class: 'response' }, h('summary', {}, `Response (code ${it.code})`),
        h('p', { class: 'body' }, pretty(it.response))) : null,
      h('details', {}, h('summary', {}, it.payload_truncated ? `Payload (${bytes(it.payload_bytes)}: the first 16 KiB; the task's page shows it whole)` : 'Payload'),
        h('pre', {}, it.payload_truncated ? it.payload : pretty(it.payload))),
      h('div', { class: 'actions' },
        h('button', { type: 'button', 'aria-label': `Replay ${it.id}`, onclick: () => replay({ id: it.id }, `dead letter ${it.id}`) }, 'Replay'),
        h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${it.id}`, onclick: () => remove(it.id) }, 'Delete')))));
    const pages = [];
    if (offset > 0) pages.push(h('a', { href: link(filter, Math.max(0, offset - LIMIT)), class: 'button' }, 'Previous'));
    pages.push(h('span', {}, d.matched ? `${num(offset + 1)}–${num(offset + d.items.length)} of ${num(d.matched)}` : 'None'));
    if (offset + d.items.length < d.matched) pages.push(h('a', { href: link(filter, offset + LIMIT), class: 'button' }, 'Next'));
    pager.replaceChildren(...pages);
  }
  await load();
  performance.mark('respq:dead-rendered');
}

// ---- find a task -----------------------------------------------------------------------------
const CUSTODY = new Set(['pending', 'in_flight', 'retrying', 'scheduled']);

export async function task(main, [id], ctx) {
  const input = h('input', { id: 'task-id', name: 'id', required: true, autocomplete: 'off', spellcheck: 'false', value: id || '' });
  const out = h('div', { class: 'task', 'aria-live': 'polite' });
  main.append(h('h1', {}, 'Find a task'),
    h('form', { class: 'toolbar', role: 'search', onsubmit: (ev) => {
      ev.preventDefault();
      const next = `#/task/${q(input.value.trim())}`;
      if (location.hash === next) window.dispatchEvent(new HashChangeEvent('hashchange'));  // look again
      else location.hash = next;
    } },
      h('label', { for: 'task-id' }, 'Task id'), input, h('button', { type: 'submit', class: 'primary' }, 'Find')),
    out);
  // While the task is in custody its state and attempts are read again every 2 s.
  let timer = null;
  let live = false;
  async function show() {
    if (!id) return;
    let t;
    try {
      t = await get(`/api/tasks/${q(id)}`);
    } catch (e) {
      if (e.status === 404) { out.replaceChildren(h('p', { role: 'status' }, `No task with id ${id} is known (${e.message}).`)); return; }
      throw e;
    }
    const cancel = CUSTODY.has(t.state)
      ? h('button', { type: 'button', class: 'danger', onclick: async () => {
        if (!(await ctx.confirm(`Cancel task ${id}? It will not be attempted again.`, 'Cancel task'))) return;
        try { await api('DELETE', `/api/tasks/${q(id)}`); await show(); } catch (e) { notice(main, e.message, 'error'); }
      } }, 'Cancel') : null;
    live = CUSTODY.has(t.state);
    const made = typeof t.attempts === 'number' ? t.attempts : t.attempts_made ?? 0;
    const dl = h('dl', { class: 'figures' });
    fillDl(dl, [['State', t.state], ['Queue', t.queue || '–'], ['Attempts', `${made} of ${t.max_attempts ?? '–'}`],
      ['Last code', t.last_code ? String(t.last_code) : '–'], ['Last error', t.last_error || '–'],
      ['Next run', t.next_run ? when(t.next_run) : '–'], ['Finished', t.finished_at ? when(t.finished_at) : '–']]);
    const attempts = Array.isArray(t.attempts) ? t.attempts : [];
    const rows = attempts.map((a, i) => h('tr', {},
      h('td', { class: 'n' }, String(a.attempt ?? i + 1)), h('td', {}, when(a.started_at)),
      h('td', { class: 'n' }, a.code == null && a.duration_ms == null ? 'running' : a.code ? String(a.code) : 'none'),
      h('td', { class: 'err' }, a.error || ''), h('td', { class: 'n' }, dur(a.duration_ms)),
      h('td', {}, a.next_run ? when(a.next_run) : '–')));
    out.replaceChildren(
      h('div', { class: 'title' }, h('h2', {}, `Task ${t.id || id}`), h('span', { class: `state ${t.state}`, 'data-testid': 'task-state' }, t.state), cancel),
      dl,
      h('h3', { id: 'att-h' }, 'Attempts'),
      rows.length ? h('div', { class: 'scroll' }, h('table', { 'aria-labelledby': 'att-h', class: 'attempts' },
        h('thead', {}, h('tr', {}, ['#', 'Time', 'Code', 'Error', 'Duration', 'Next run'].map((c) => h('th', { scope: 'col' }, c)))), h('tbody', {}, rows)))
        : h('p', {}, 'No attempt yet.'),
      h('h3', {}, 'Payload'), h('pre', { class: 'payload' }, pretty(t.payload)));
  }
  await show();
  timer = setInterval(() => { if (live) show().catch(() => {}); }, 2000);
  return () => clearInterval(timer);
}

// ---- hosts -----------------------------------------------------------------------------------
export async function hosts(main) {
  main.append(h('h1', {}, 'Hosts'));
  const tbody = h('tbody');
  const status = h('p', { role: 'status' });
  main.append(status, h('div', { class: 'scroll' }, h('table', { class: 'hosts' },
    h('caption', {}, 'Destination hosts, busiest first'),
    h('thead', {}, h('tr', {}, ['Host', 'Queue', 'In flight / cap', 'Waiting', 'Circuit', 'Error rate', 'Failures', 'Last error']
      .map((c) => h('th', { scope: 'col' }, c)))),
    tbody)));
  async function load() {
    let d;
    try { d = await get('/api/hosts'); } catch (e) {
      if (e.status === 404) { status.textContent = 'This server reports no host figures.'; return; }
      throw e;
    }
    const list = Array.isArray(d) ? d : d.hosts || [];
    status.textContent = d.total != null && d.total > list.length ? `${list.length} of ${num(d.total)} hosts` : `${list.length} host(s)`;
    tbody.replaceChildren(...list.map((x) => {
      const cap = x.cap ?? x.limit;
      const inflight = x.in_flight ?? 0;
      const name = x.host ?? x.name;
      const meter = cap ? h('meter', { min: 0, max: cap, value: Math.min(inflight, cap), 'aria-label': `${name} in flight against its cap` }) : null;
      const errRate = x.error_rate != null ? x.error_rate : x.attempts ? x.failures / x.attempts : null;
      const state = String(x.state || '–').replace('-', '_');
      return h('tr', { class: state, 'data-host': name },
        h('th', { scope: 'row' }, name),
        h('td', {}, x.queue ? h('a', { href: `#/queue/${q(x.queue)}` }, x.queue) : '–'),
        h('td', {}, meter, ` ${num(inflight)} / ${cap ? num(cap) : '∞'}`),
        h('td', { class: 'n' }, num(x.waiting)),
        h('td', { class: `circuit ${state}` }, state.replace('_', '-')),
        h('td', { class: 'n' }, errRate == null ? '–' : `${(errRate * 100).toFixed(1)} %`),
        h('td', { class: 'n' }, num(x.failures)),
        h('td', { class: 'err' }, x.last_error || ''));
    }));
  }
  await load();
  const timer = setInterval(() => load().catch(() => {}), 2000);
  return () => clearInterval(timer);
}
