// The dashboard's shell: login, the router (#/..., one page at a time), and the live
// figures every page reads: one event stream (/api/events?figures=1) carrying, once a
// second, the overview figures and, for the pages that show them, the outcomes; when it
// can't be opened, the figures are polled every 2 s instead.
import { AuthError, get, openStream, setPassword, password } from './api.js';
import * as pages from './pages.js';

const bus = new EventTarget();
let latest = null; // the newest figures document, with rates per queue
let stream = null;
let poller = null;
let cleanup = null;
let started = false;

function withRates(doc) {
  const prev = latest;
  const byName = new Map((prev?.queues || []).map((q) => [q.name, q]));
  const dt = prev ? doc.t - prev.t : 0;
  for (const q of doc.queues) {
    const p = byName.get(q.name);
    if (p && dt > 0) {
      q.delivered_per_s = Math.max(0, (q.delivered - p.delivered) / dt);
      q.failed_per_s = Math.max(0, (q.failed - p.failed) / dt);
    } else {
      q.delivered_per_s = p?.delivered_per_s ?? null;
      q.failed_per_s = p?.failed_per_s ?? null;
    }
  }
  return doc;
}

function publish(doc) {
  latest = withRates(doc);
  bus.dispatchEvent(new CustomEvent('figures', { detail: latest }));
}

function setLive(text, ok) {
  const el = document.getElementById('live');
  el.textContent = text;
  el.className = ok ? 'ok' : 'warn';
}

function startPolling() {
  if (poller) return;
  setLive('Polling every 2 s', false);
  poller = setInterval(async () => {
    try { publish(await get('/api/overview')); } catch (e) { if (e instanceof AuthError) login(); }
  }, 2000);
}

function stopPolling() {
  clearInterval(poller);
  poller = null;
}

// The stream a page needs: the figures alone (the broker then builds no outcome events for
// it), or for a queue's page also that queue's outcomes, at most 20 a second (beyond that
// the server counts what it skipped). Reopened when the page needs another.
let streamKind = null;
const MAX_OUTCOMES_PER_S = 20;

function startLive(kind = 'figures') {
  if (stream && streamKind === kind) return;
  if (stream) stream.close();
  streamKind = kind;
  const url = kind === 'figures' ? '/api/events?figures=1&outcomes=0'
    : `/api/events?figures=1&queue=${encodeURIComponent(kind.slice(6))}&max_rate=${MAX_OUTCOMES_PER_S}`;
  stream = openStream(url, (name, data) => {
    if (name === 'figures') publish(data);
    else if (name === 'message') bus.dispatchEvent(new CustomEvent('outcome', { detail: data }));
    else if (name === 'skipped') bus.dispatchEvent(new CustomEvent('skipped', { detail: data }));
  }, (ok, err) => {
    if (err instanceof AuthError) return login();
    if (ok) { stopPolling(); setLive('Live', true); } else startPolling();
  });
}

function stopLive() {
  if (stream) stream.close();
  stream = null;
  streamKind = null;
  stopPolling();
}

// A confirmation for every destructive action; resolves true when confirmed.
function confirmAction(text, okLabel = 'Confirm') {
  const dlg = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = okLabel;
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
    dlg.returnValue = '';
    dlg.showModal();
  });
}

const ctx = {
  bus,
  latest: () => latest,
  confirm: confirmAction,
  // First figures: the newest, or fetched now.
  async figures() { if (!latest) publish(await get('/api/overview')); return latest; },
};

async function route() {
  if (!started) return;
  if (cleanup) { try { cleanup(); } catch (e) { console.error(e); } cleanup = null; }
  const parts = (location.hash.replace(/^#\/?/, '') || '').split('/').filter(Boolean).map(decodeURIComponent);
  const name = parts[0] || 'overview';
  startLive(name === 'queue' && parts[1] ? `queue:${parts[1]}` : 'figures');
  const main = document.getElementById('main');
  main.replaceChildren();
  for (const a of document.querySelectorAll('header nav a')) {
    const target = a.getAttribute('href').replace(/^#\/?/, '') || 'overview';
    if (target === name || (name === 'queue' && target === 'overview')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const page = { overview: pages.overview, queue: pages.queue, dead: pages.dead, task: pages.task, hosts: pages.hosts }[name] || pages.notFound;
  try {
    cleanup = (await page(main, parts.slice(1), ctx)) || null;
  } catch (e) {
    if (e instanceof AuthError) return login();
    pages.showError(main, e);
  }
}

function login(message) {
  started = false;
  stopLive();
  if (cleanup) { cleanup(); cleanup = null; }
  setPassword('');
  document.getElementById('logout').hidden = true;
  setLive('', false);
  const main = document.getElementById('main');
  pages.loginForm(main, message, async (pw) => {
    setPassword(pw);
    try {
      publish(await get('/api/overview'));
    } catch (e) {
      setPassword('');
      if (e instanceof AuthError) return 'Wrong password.';
      return e.message;
    }
    start();
    return null;
  });
}

function start() {
  started = true;
  document.getElementById('logout').hidden = !password();
  route();
}

document.getElementById('logout').addEventListener('click', () => login());
window.addEventListener('hashchange', route);

(async () => {
  try {
    publish(await get('/api/overview'));  // the first figures, and the password check
    start();
  } catch (e) {
    if (e instanceof AuthError) login();
    else pages.showError(document.getElementById('main'), e);
  }
})();
