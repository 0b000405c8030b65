// Bull 4, unchanged, against a Redis-protocol server: node bull_run.js <port>. Adds
// plain, prioritised, delayed, LIFO and failing jobs, runs them with a processor, and
// prints one line of JSON with what the library saw; tests/integration/test_jobs_bullmq.py
// asserts on it.
'use strict';
const within = require('./within');
const Queue = require('bull');

const port = Number(process.argv[2]);

(async () => {
  const q = new Queue('mail', { redis: { host: '127.0.0.1', port } });
  await q.pause(true);  // this process's worker waits until every job is in
  const plain = await q.add('send', { to: 'a' });
  const low = await q.add('low', { to: 'low' }, { priority: 9 });
  const high = await q.add('high', { to: 'high' }, { priority: 1 });
  const delayed = await q.add('delayed', { to: 'later' }, { delay: 800 });
  const failing = await q.add('fail', {}, { attempts: 2, backoff: 100 });
  const countsBefore = await q.getJobCounts();

  const order = [];
  const failures = [];
  const progress = [];
  q.on('failed', (job, err) => failures.push([job.name, job.attemptsMade, err.message]));
  q.on('progress', (job, p) => progress.push([job.name, p]));
  q.process('*', 1, async (job) => {
    order.push(job.name);
    if (job.name === 'fail') throw new Error(`boom ${job.attemptsMade}`);
    await job.progress(50);
    return { sent: job.data.to };
  });
  await q.resume(true);
  await within(20000, 'every job to end', () => order.filter((n) => n !== 'fail').length >= 4 && failures.length >= 2);

  const d = await q.getJob(delayed.id);
  const out = {
    order,
    failures,
    progress,
    countsBefore,
    countsAfter: await q.getJobCounts(),
    plainReturn: (await q.getJob(plain.id)).returnvalue,
    lowReturn: (await q.getJob(low.id)).returnvalue,
    highReturn: (await q.getJob(high.id)).returnvalue,
    delayedWaitedMs: d.processedOn - d.timestamp,
    failedReason: (await q.getJob(failing.id)).failedReason,
  };
  await q.clean(0, 'completed');
  await q.clean(0, 'failed');
  out.countsCleaned = await q.getJobCounts();
  await q.close();
  console.log(JSON.stringify(out));
  process.exit(0);
})().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
