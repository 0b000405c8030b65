// The admin API as the dashboard uses it: every request carries the password the user
// typed (kept in sessionStorage for this tab only) as a Bearer token, and the event
// stream is read with fetch, since EventSource can't send an Authorization header.
const KEY = 'respq.password';

export const password = () => sessionStorage.getItem(KEY) || '';
export const setPassword = (p) => (p ? sessionStorage.setItem(KEY, p) : sessionStorage.removeItem(KEY));

export class AuthError extends Error {}

function headers(extra = {}) {
  return { Authorization: 'Bearer ' + password(), ...extra };
}

export async function api(method, path, body) {
  const init = { method, headers: headers(), cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  if (r.status === 401) throw new AuthError('password needed');
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { error: text }; }
  if (!r.ok) {
    const e = new Error((data && data.error) || `HTTP ${r.status}`);
    e.status = r.status;
    throw e;
  }
  return data;
}

export const get = (path) => api('GET', path);
export const q = encodeURIComponent;

// A Server-Sent Events stream over fetch. onEvent(name, data) for each event ('message'
// when unnamed); onState(true|false) when it opens or fails. Reconnects after a pause;
// close() ends it.
export function openStream(path, onEvent, onState) {
  let closed = false;
  let ctrl = null;
  let retry = 1000;
  async function run() {
    while (!closed) {
      ctrl = new AbortController();
      try {
        const r = await fetch(path, { headers: headers(), cache: 'no-store', signal: ctrl.signal });
        if (r.status === 401) throw new AuthError('password needed');
        if (!r.ok || !r.body) throw new Error(`HTTP ${r.status}`);
        onState(true);
        retry = 1000;
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let end;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            let name = 'message';
            const data = [];
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) name = line.slice(6).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
            }
            if (!data.length) continue;
            try { onEvent(name, JSON.parse(data.join('\n'))); } catch (e) { console.error(e); }
          }
        }
      } catch (e) {
        if (closed) return;
        if (e instanceof AuthError) { onState(false, e); return; }
      }
      if (closed) return;
      onState(false);
      await new Promise((res) => setTimeout(res, retry));
      retry = Math.min(retry * 2, 15000);
    }
  }
  run();
  return { close() { closed = true; if (ctrl) ctrl.abort(); } };
}
