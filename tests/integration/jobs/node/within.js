// within(ms, what, pred): resolves once pred() holds (checked every 20 ms), rejects after
// ms milliseconds naming what it waited for. Shared by the job-library drivers.
'use strict';
module.exports = function within(ms, what, pred) {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const tick = () => {
      if (pred()) return resolve();
      if (Date.now() - start > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 20);
    };
    tick();
  });
};
