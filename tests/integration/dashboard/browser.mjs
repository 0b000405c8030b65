// The dashboard in a real browser: Debian's chromium driven by playwright-core (from
// admin/web/node_modules, installed by scripts/build from package-lock.json). Run by
// test_dashboard.py, which starts respq and the HTTP endpoint and passes them in
// DASH_CONFIG (JSON): {admin, sink, password?, artifacts, scenario, ...}.
// Each scenario asserts what the page shows against what the admin API says, and saves
// screenshots under `artifacts`. Prints "PERF name=value" lines for the figures.
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';

const cfg = JSON.parse(process.env.DASH_CONFIG);
const { chromium } = await import(path.join(process.env.RESPQ_SOURCE_DIR, 'admin/web/node_modules/playwright-core/index.mjs'));
const base = `http://127.0.0.1:${cfg.admin}`;
fs.mkdirSync(cfg.artifacts, { recursive: true });

async function api(method, p, body, password = cfg.password) {
  const headers = {};
  if (password) headers.Authorization = `Bearer ${password}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : null };
}
const queueFigures = async (name) => (await api('GET', '/api/queues')).json.queues.find((x) => x.name === name);
async function until(what, fn, timeout = 20000) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const shot = (page, name) => page.screenshot({ path: path.join(cfg.artifacts, `${name}.png`), fullPage: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
const problems = [];
// Chromium logs every 4xx response as a console error; the login scenario meets 401s and
// the task scenario a 404 (an unknown id) on purpose, so those count only elsewhere.
const expected = { login: 'status of 401', task: 'status of 404' }[cfg.scenario];
page.on('console', (m) => {
  if (m.type() !== 'error') return;
  if (expected && m.text().includes(expected)) return;
  problems.push(`console: ${m.text()}`);
});
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));

const overviewRow = (name) => page.locator(`tr[data-queue="${name}"]`);
const cell = (name, col) => overviewRow(name).locator(`td[data-col="${col}"]`);

const figure = (label) => page.locator('dl.figures dt', { hasText: new RegExp(`^${label}$`) }).locator('xpath=following-sibling::dd[1]');
const confirmWith = async (label) => {
  const dlg = page.locator('dialog#confirm');
  await dlg.waitFor();
  await shot(page, `confirm-${label.toLowerCase().replace(/ /g, '-')}`);
  await dlg.getByRole('button', { name: label, exact: true }).click();
};

const scenarios = {
  // The overview: every queue's row, server figures, charts; counts change live after
  // pushes (no reload: the page's SSE stream brings the figures).
  async overview() {
    await page.goto(base + '/');
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await overviewRow('tasks').waitFor();
    await overviewRow('fail').waitFor();
    await page.getByText('Clients', { exact: true }).waitFor();
    assert.equal(await page.locator('figure.chart canvas').count() >= 2, true, 'two charts drawn');
    await page.locator('#live.ok').waitFor();  // the live stream is open
    // Tasks held in flight by the endpoint: the In flight cell counts them, live.
    const n = 7;
    const tasks = Array.from({ length: n }, (_, i) => ({ id: `ov-${i}`, url: `${cfg.sink}/ov?hold=ov` }));
    assert.equal((await api('POST', '/api/queues/tasks/tasks', tasks)).status, 201);
    const t0 = Date.now();
    await until('in flight 7 on the page', async () => (await cell('tasks', 'in_flight').textContent()) === String(n));
    console.log(`PERF overview_live_update_ms=${Date.now() - t0}`);
    await shot(page, 'overview');
    await fetch(`${cfg.sink}/_release/ov`);
    await until('delivered on the page', async () => (await cell('tasks', 'in_flight').textContent()) === '0', 20000);
    const f = await queueFigures('tasks');
    assert.ok(f.delivered >= n, `delivered ${f.delivered}`);
    // A phone: the table scrolls inside its box, the page itself does not.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `page wider than a phone by ${overflow}px`);
    await shot(page, 'overview-phone');
  },

  // The first render of the overview (100 queues) and of the dead letters (10,000):
  // measured in the browser, from navigation to the page's own mark.
  async perf() {
    // One load to warm the browser's cache (a cold browser process compiles everything
    // once), then three measured loads.
    await page.goto(base + '/');
    await overviewRow('tasks').waitFor();
    const runs = [];
    for (let i = 0; i < 3; i++) {
      await page.goto(base + '/?' + i);
      await page.waitForFunction(() => performance.getEntriesByName('respq:overview-rendered').length > 0);
      const ms = await page.evaluate(() => performance.getEntriesByName('respq:overview-rendered')[0].startTime);
      assert.equal(await page.locator('tbody tr[data-queue]').count(), cfg.queues);
      runs.push(ms);
    }
    const worst = Math.max(...runs);
    console.log(`PERF overview_${cfg.queues}_queues_ms=${worst.toFixed(0)} (runs ${runs.map((r) => r.toFixed(0)).join(', ')})`);
    assert.ok(worst < cfg.limit_ms, `overview took ${worst} ms`);
    await shot(page, 'overview-100-queues');
    const dead = [];
    for (let i = 0; i < 3; i++) {
      await page.goto(`${base}/?d${i}#/dead/${cfg.dead_queue}`);
      await page.waitForFunction(() => performance.getEntriesByName('respq:dead-rendered').length > 0);
      dead.push(await page.evaluate(() => performance.getEntriesByName('respq:dead-rendered')[0].startTime));
    }
    await page.getByText(`${cfg.dead_letters.toLocaleString('en')} dead letters in ${cfg.dead_queue}`).waitFor();
    // The first open reads every letter on the server; later ones find them read already.
    console.log(`PERF dead_letters_${cfg.dead_letters}_ms=${Math.max(...dead).toFixed(0)} (first open ${dead[0].toFixed(0)}, then ${dead.slice(1).map((r) => r.toFixed(0)).join(', ')})`);
    assert.ok(Math.max(...dead) < cfg.limit_ms, `dead letters took ${Math.max(...dead)} ms`);
    await shot(page, 'dead-letters-10000');
  },

  // A queue's page: its figures change live after pushes, the live outcome stream, the
  // recent failures (live, and after a reload from the dead letters).
  async queue() {
    await page.goto(base + '/#/queue/tasks');
    await page.getByRole('heading', { name: 'Queue tasks' }).waitFor();
    await page.locator('#live.ok').waitFor();
    assert.equal(await page.locator('.title .state').textContent(), 'running');
    const ids = ['qp-0', 'qp-1', 'qp-2'];
    await api('POST', '/api/queues/tasks/tasks', ids.map((id) => ({ id, url: `${cfg.sink}/q?hold=qp` })));
    await until('in flight 3 shown', async () => (await figure('In flight').textContent()) === '3');
    await fetch(`${cfg.sink}/_release/qp`);
    for (const id of ids) await page.locator('table.outcomes').first().locator('tr.delivered', { hasText: id }).waitFor();
    await until('delivered 3 shown', async () => (await figure('Delivered').textContent()) === '3');
    await page.getByText('Options').click();
    await figure('Concurrency').waitFor();
    await shot(page, 'queue');
    const failures = () => page.locator('section', { has: page.getByRole('heading', { name: 'Recent failures' }) });
    await page.goto(base + '/#/queue/fail');
    await page.getByRole('heading', { name: 'Queue fail' }).waitFor();
    await page.locator('#live.ok').waitFor();
    await api('POST', '/api/queues/fail/tasks', { id: 'qf-0', url: `${cfg.sink}/status/500` });
    await failures().locator('tr.dead', { hasText: 'qf-0' }).waitFor();
    await page.reload();
    await failures().locator('tr', { hasText: 'qf-0' }).waitFor();
    assert.match(await failures().locator('tr', { hasText: 'qf-0' }).textContent(), /500/);
  },

  // Pause and Resume: the state shown and the server's; pushes wait while paused.
  async queue_pause() {
    await page.goto(base + '/#/queue/tasks');
    await page.getByRole('heading', { name: 'Queue tasks' }).waitFor();
    await page.locator('#live.ok').waitFor();
    await page.getByRole('button', { name: 'Pause', exact: true }).click();
    await page.locator('.title .state', { hasText: 'paused' }).waitFor();
    assert.equal((await queueFigures('tasks')).paused, true);
    assert.equal(await page.getByRole('button', { name: 'Pause', exact: true }).isDisabled(), true);
    const ids = ['pp-0', 'pp-1', 'pp-2'];
    await api('POST', '/api/queues/tasks/tasks', ids.map((id) => ({ id, url: `${cfg.sink}/q` })));
    await until('pending 3 shown', async () => (await figure('Pending').textContent()) === '3');
    await shot(page, 'queue-paused');
    await page.getByRole('button', { name: 'Resume', exact: true }).click();
    await page.locator('.title .state', { hasText: 'running' }).waitFor();
    for (const id of ids) await page.locator('table.outcomes').first().locator('tr.delivered', { hasText: id }).waitFor();
    await until('pending 0 shown', async () => (await figure('Pending').textContent()) === '0');
    assert.equal((await queueFigures('tasks')).paused, false);
  },

  // Dead letters: grouped with counts, payload pretty-printed, Replay one (it succeeds
  // the second time), Delete one, Replay a group, each after a confirmation.
  async dead() {
    const ids = ['dl-0', 'dl-1', 'dl-2'];
    await api('POST', '/api/queues/dlq/tasks', ids.map((id) => ({ id, url: `${cfg.sink}/dl?fail_first=1&fail_status=500`, param: { n: id } })));
    await until('3 dead letters', async () => (await queueFigures('dlq')).dead_list === 3);
    await page.goto(base + '/#/dead/dlq');
    await page.getByText('3 dead letters in dlq').waitFor();
    const group = page.locator('table.groups tbody tr').first();
    assert.match(await group.textContent(), /127\.0\.0\.1\s*500\s*3/);
    const letter = (id) => page.locator(`ol.letters li[data-id="${id}"]`);
    await letter('dl-0').getByText('Payload').click();
    const pre = await letter('dl-0').locator('pre').textContent();
    assert.ok(pre.includes('\n  "param": {\n    "n": "dl-0"\n  }'), pre);
    // What the endpoint answered, pretty-printed too.
    await letter('dl-0').getByText('Response (code 500)').click();
    const answer = await letter('dl-0').locator('details.response p.body').textContent();
    assert.ok(answer.includes('"status": 500'), answer);
    await shot(page, 'dead-letters');
    // Going back from the confirmation does nothing.
    await letter('dl-0').getByRole('button', { name: 'Delete dl-0' }).click();
    await confirmWith('Go back');
    assert.equal((await queueFigures('dlq')).dead_list, 3);
    // Filtering by a group's link, and paging.
    await group.getByRole('link', { name: '127.0.0.1' }).click();
    await page.getByText('3 match').waitFor();
    await page.getByText('1–3 of 3').waitFor();
  },

  async dead_actions() {
    const ids = ['dl-0', 'dl-1', 'dl-2'];
    await api('POST', '/api/queues/dlq/tasks', ids.map((id) => ({ id, url: `${cfg.sink}/dl?fail_first=1&fail_status=500`, param: { n: id } })));
    await until('3 dead letters', async () => (await queueFigures('dlq')).dead_list === 3);
    await page.goto(base + '/#/dead/dlq');
    await page.getByText('3 dead letters in dlq').waitFor();
    const letter = (id) => page.locator(`ol.letters li[data-id="${id}"]`);
    await letter('dl-0').getByRole('button', { name: 'Replay dl-0' }).click();
    await confirmWith('Replay');
    await letter('dl-0').waitFor({ state: 'detached' });
    await until('dl-0 delivered on replay', async () => (await api('GET', '/api/tasks/dl-0')).json?.state === 'delivered');
    await letter('dl-1').getByRole('button', { name: 'Delete dl-1' }).click();
    await confirmWith('Delete');
    await letter('dl-1').waitFor({ state: 'detached' });
    assert.equal((await api('GET', '/api/queues/dlq/dead')).json.items.some((i) => i.id === 'dl-1'), false);
    await page.getByRole('button', { name: /^Replay group 127\.0\.0\.1 500/ }).click();
    await confirmWith('Replay');
    await until('dl-2 delivered on replay', async () => (await api('GET', '/api/tasks/dl-2')).json?.state === 'delivered');
    await until('no dead letter left', async () => (await queueFigures('dlq')).dead_list === 0);
  },

  // Find a task by id: its state, attempts and payload; Cancel while it waits.
  async task() {
    assert.equal((await api('POST', '/api/queues/tasks/pause')).status < 300, true);
    await api('POST', '/api/queues/tasks/tasks', { id: 'find-me', url: `${cfg.sink}/t`, param: { order: 42 } });
    await page.goto(base + '/#/task');
    await page.getByLabel('Task id').fill('find-me');
    await page.getByRole('button', { name: 'Find' }).click();
    await page.locator('[data-testid=task-state]', { hasText: 'pending' }).waitFor();
    assert.ok((await page.locator('pre.payload').textContent()).includes('"order": 42'));
    await shot(page, 'task');
    await page.getByRole('button', { name: 'Cancel', exact: true }).click();
    await confirmWith('Cancel task');
    await page.locator('[data-testid=task-state]', { hasText: 'cancelled' }).waitFor();
    assert.equal((await api('GET', '/api/tasks/find-me')).json.state, 'cancelled');
    await api('POST', '/api/queues/tasks/resume');
    // A delivered one, and one nobody knows.
    await api('POST', '/api/queues/tasks/tasks', { id: 'done-1', url: `${cfg.sink}/t` });
    await until('done-1 delivered', async () => (await api('GET', '/api/tasks/done-1')).json?.state === 'delivered');
    await page.getByLabel('Task id').fill('done-1');
    await page.getByRole('button', { name: 'Find' }).click();
    await page.locator('[data-testid=task-state]', { hasText: 'delivered' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Cancel', exact: true }).count(), 0);
    // Its attempt: the time, code 200, the duration.
    const attempt = page.locator('table.attempts tbody tr');
    assert.equal(await attempt.count(), 1);
    const cells = await attempt.locator('td').allTextContents();
    assert.equal(cells[0], '1');
    assert.equal(cells[2], '200');
    assert.match(cells[4], /ms$/);
    await page.getByLabel('Task id').fill('nobody-knows');
    await page.getByRole('button', { name: 'Find' }).click();
    await page.getByText('No task with id nobody-knows is known').waitFor();
  },

  // Hosts: the destination hosts the queues have talked to.
  async hosts() {
    await api('POST', '/api/queues/tasks/tasks', { id: 'h-1', url: `${cfg.sink}/h` });
    await until('h-1 delivered', async () => (await queueFigures('tasks')).delivered >= 1);
    await page.goto(base + '/#/hosts');
    await page.getByRole('heading', { name: 'Hosts' }).waitFor();
    await page.locator('table.hosts tbody tr', { hasText: '127.0.0.1' }).waitFor();
    await shot(page, 'hosts');
  },

  // requirepass: the page asks for the password; a wrong one is refused, the right one
  // opens the overview, and the API is still closed without it.
  async login() {
    assert.equal((await api('GET', '/api/overview', undefined, '')).status, 401);
    await page.goto(base + '/');
    const pw = page.getByLabel('Password');
    await pw.waitFor();
    await shot(page, 'login');
    await pw.fill('not-it');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByText('Wrong password.').waitFor();
    await pw.fill(cfg.password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await overviewRow('tasks').waitFor();
    await page.locator('#live.ok').waitFor();
    // A reload keeps the tab's session; logging out forgets it.
    await page.reload();
    await overviewRow('tasks').waitFor();
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('Password').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  },
};

let failed = false;
try {
  await scenarios[cfg.scenario]();
  if (problems.length) throw new Error('errors in the page:\n' + problems.join('\n'));
} catch (e) {
  failed = true;
  console.error(e.stack || String(e));
  try { await shot(page, `FAILED-${cfg.scenario}`); } catch {}
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
