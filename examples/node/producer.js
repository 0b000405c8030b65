#!/usr/bin/env node
// Enqueues mail tasks on respq with ioredis, the same tasks as examples/php/producer.php.
//
//   npm ci
//   node producer.js [--count 10000] [--host 127.0.0.1] [--port 6380]
//                    [--url http://127.0.0.1:8080/send_mail] [--batch NAME]
//
// Environment (defaults for the options): RESPQ_HOST, RESPQ_PORT, MAIL_ENDPOINT.
'use strict';

const crypto = require('node:crypto');
const { parseArgs } = require('node:util');
const Redis = require('ioredis');

const QUEUE = 'tasks';
const CHUNK = 1000; // commands per round trip

function defaultBatch() {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `welcome-${stamp}-${crypto.randomBytes(2).toString('hex')}`;
}

async function main() {
  const { values: opt } = parseArgs({
    options: {
      count: { type: 'string', default: '10000' },
      host: { type: 'string', default: process.env.RESPQ_HOST || '127.0.0.1' },
      port: { type: 'string', default: process.env.RESPQ_PORT || '6380' },
      url: { type: 'string', default: process.env.MAIL_ENDPOINT || 'http://127.0.0.1:8080/send_mail' },
      batch: { type: 'string', default: defaultBatch() },
    },
  });
  const count = Number(opt.count);
  if (!Number.isInteger(count) || count < 1) {
    console.error('--count must be a positive integer');
    process.exit(2);
  }

  // Fail fast instead of ioredis' default of reconnecting forever.
  const redis = new Redis({
    host: opt.host,
    port: Number(opt.port),
    connectTimeout: 2000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  let connectionError = null; // why the connection failed, e.g. ECONNREFUSED
  redis.on('error', (err) => { connectionError = err; });

  const started = process.hrtime.bigint();
  try {
    for (let first = 0; first < count; first += CHUNK) {
      const pipe = redis.pipeline(); // one write per chunk, no MULTI/EXEC
      for (let i = first; i < Math.min(first + CHUNK, count); i++) {
        pipe.lpush(QUEUE, JSON.stringify({
          url: opt.url,
          param: { to: `user${i}@example.com`, subject: `Welcome aboard, user ${i}`, batch: opt.batch },
        }));
      }
      for (const [err] of await pipe.exec()) {
        if (err) throw err;
      }
    }
  } catch (err) {
    console.error(`respq at ${opt.host}:${opt.port}: ${(connectionError || err).message}`);
    redis.disconnect();
    process.exit(1);
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  await redis.quit();
  console.log(`Enqueued ${count} tasks for ${opt.url} in ${ms.toFixed(1)} ms (batch ${opt.batch})`);
}

main();
