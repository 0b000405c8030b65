// BullMQ, unchanged, against a Redis-protocol server: node bullmq_run.js <port> <scenario>.
// Prints one line of JSON with what the library saw; tests/integration/test_jobs_bullmq.py
// asserts on it. Scenarios:
//   lifecycle  a queue, a worker and queue events: plain, prioritised, delayed, failing
//              (retried with a fixed backoff), a flow (parent after its child), progress,
//              return values and the job counts; then obliterate
//   produce N  adds N jobs (the last one delayed 1 s) and exits
//   consume N  runs a worker until N jobs have completed
'use strict';
const within = require('./within');
const { Queue, Worker, QueueEvents, FlowProducer } = require('bullmq');

const port = Number(process.argv[2]);
const scenario = process.argv[3];
const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };


async function lifecycle() {
  const q = new Queue('mail', { connection });
  const events = new QueueEvents('mail', { connection });
  await events.waitUntilReady();
  const progress = [];
  events.on('progress', ({ jobId, data }) => progress.push([jobId, data]));
  const completedEvents = [];
  events.on('completed', ({ jobId }) => completedEvents.push(jobId));

  // Jobs added before the worker starts, so that priority decides the order.
  const plain = await q.add('send', { to: 'a@example.org' });
  const low = await q.add('low', { to: 'low' }, { priority: 10 });
  const high = await q.add('high', { to: 'high' }, { priority: 1 });
  const delayed = await q.add('delayed', { to: 'later' }, { delay: 1000 });
  const failing = await q.add('fail', {}, { attempts: 2, backoff: { type: 'fixed', delay: 200 } });
  const flow = await new FlowProducer({ connection }).add({
    name: 'parent', queueName: 'mail', data: { to: 'p' },
    children: [{ name: 'child', queueName: 'mail', data: { to: 'c' } }],
  });
  const countsBefore = await q.getJobCounts();

  const order = [];
  const failures = [];
  const worker = new Worker('mail', async (job) => {
    order.push(job.name);
    if (job.name === 'fail') throw new Error(`boom ${job.attemptsMade}`);
    if (job.name === 'send') await job.updateProgress(50);
    if (job.name === 'parent') return { children: Object.values(await job.getChildrenValues()) };
    return { sent: job.data.to };
  }, { connection, concurrency: 1 });
  worker.on('failed', (job, err) => failures.push([job.name, job.attemptsMade, err.message]));
  await within(20000, 'every job to end', () => order.filter((n) => n !== 'fail').length >= 6 && failures.length >= 2);
  await within(5000, 'the completed events', () => completedEvents.length >= 6);

  const get = async (id) => q.getJob(id);
  const d = await get(delayed.id);
  const f = await get(failing.id);
  const out = {
    order,
    failures,
    progress,
    countsBefore,
    countsAfter: await q.getJobCounts(),
    plainReturn: (await get(plain.id)).returnvalue,
    highReturn: (await get(high.id)).returnvalue,
    lowReturn: (await get(low.id)).returnvalue,
    parentReturn: (await get(flow.job.id)).returnvalue,
    delayedWaitedMs: d.processedOn - d.timestamp,
    failedReason: f.failedReason,
    failedAttempts: f.attemptsMade,
    completedEvents: completedEvents.length,
  };
  await worker.close();
  await q.obliterate({ force: true });
  await events.close();
  await q.close();
  return out;
}

async function produce(n) {
  const q = new Queue('durable', { connection });
  const ids = [];
  for (let i = 0; i < n; i++) {
    const opts = i === n - 1 ? { delay: 1000 } : {};
    ids.push((await q.add('job', { i }, opts)).id);
  }
  await q.close();
  return { ids };
}

async function consume(n) {
  const done = [];
  const worker = new Worker('durable', async (job) => {
    done.push(job.data.i);
    return job.data.i * 2;
  }, { connection });
  await within(20000, `${n} jobs`, () => done.length >= n);
  await worker.close();
  const q = new Queue('durable', { connection });
  const counts = await q.getJobCounts();
  await q.close();
  return { done: done.sort((a, b) => a - b), counts };
}

(async () => {
  let out;
  if (scenario === 'lifecycle') out = await lifecycle();
  else if (scenario === 'produce') out = await produce(Number(process.argv[4]));
  else if (scenario === 'consume') out = await consume(Number(process.argv[4]));
  else throw new Error(`unknown scenario ${scenario}`);
  console.log(JSON.stringify(out));
  process.exit(0);
})().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
