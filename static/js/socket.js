// One WebSocket that keeps coming back: exponential backoff with jitter
// (capped at 30 s), an immediate retry when the network or the page wakes
// up, and a liveness probe for sockets that look open but are dead.

const CAP_MS = 30000;
const PROBE_MS = 6000;

export function createSocket({ onFrame, onState, onClose, probe }) {
  let ws = null;
  let attempt = 0;
  let timer = null;
  let probeTimer = null;
  let stopped = true;
  let ready = false; // hello received on the current socket

  const url = () => (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';

  function connect() {
    clearTimeout(timer);
    timer = null;
    if (stopped || (ws && ws.readyState <= 1)) return;
    onState({ state: 'connecting', attempt });
    const s = new WebSocket(url());
    ws = s;
    let opened = false;
    s.onopen = () => { opened = true; };
    s.onmessage = (e) => {
      if (ws !== s) return;
      clearTimeout(probeTimer);
      probeTimer = null;
      let f;
      try { f = JSON.parse(e.data); } catch { return; }
      if (f.type === 'hello') {
        attempt = 0;
        ready = true;
        onState({ state: 'open' });
      }
      onFrame(f);
    };
    s.onclose = (e) => {
      if (ws !== s) return;
      s.onclose = null;
      ws = null;
      ready = false;
      clearTimeout(probeTimer);
      probeTimer = null;
      // The app decides: 'retry' (default), or stop (logged out).
      Promise.resolve(onClose({ code: e.code, reason: e.reason, opened })).then((verdict) => {
        if (verdict === 'stop') stop();
        else if (!stopped) schedule();
      });
    };
  }

  function schedule() {
    if (stopped || timer || ws) return;
    const base = Math.min(CAP_MS, 1000 * 2 ** attempt);
    attempt++;
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    const at = Date.now() + delay;
    onState({ state: 'waiting', at });
    timer = setTimeout(connect, delay);
  }

  /** Kills a socket that looks open, and reconnects now. */
  function drop() {
    const s = ws;
    if (!s || !s.onclose) return;
    const onclose = s.onclose;
    try { s.close(4000, 'dead'); } catch { /* already closing */ }
    onclose({ code: 4000, reason: 'dead' });
  }

  return {
    start() { stopped = false; attempt = 0; connect(); },
    stop() {
      stopped = true;
      clearTimeout(timer);
      timer = null;
      clearTimeout(probeTimer);
      const s = ws;
      ws = null;
      ready = false;
      if (s) { s.onclose = null; try { s.close(1000, 'bye'); } catch { /* ignore */ } }
      onState({ state: 'stopped' });
    },
    /** True when the frame went out on a socket that has said hello. */
    send(obj) {
      if (!ws || ws.readyState !== 1 || !ready) return false;
      ws.send(JSON.stringify(obj));
      return true;
    },
    get ready() { return ready && !!ws && ws.readyState === 1; },
    /** The network or the page woke up: reconnect now, or check the socket lives. */
    nudge() {
      if (stopped) return;
      if (!ws) { attempt = Math.min(attempt, 1); connect(); return; }
      if (ws.readyState === 1 && ready) this.check();
    },
    /** Asks the server for an answer; no frame within PROBE_MS means the socket is dead. */
    check() {
      if (!ws || ws.readyState !== 1 || probeTimer || !probe()) return;
      probeTimer = setTimeout(() => { probeTimer = null; drop(); }, PROBE_MS);
    },
    /** Gives up on the current socket and reconnects now. */
    drop,
    retryNow() { if (!stopped && !ws) { clearTimeout(timer); timer = null; connect(); } },
  };
}
