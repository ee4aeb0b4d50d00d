// The one WebSocket: connection state, reconnect with exponential backoff and full jitter,
// a ping inside API Gateway's 10-minute idle limit, a fresh connection before its 2-hour cap,
// and a "reconnected" signal after which every view re-reads what it shows over REST.
import { session } from './auth.js';
import { api } from './api.js';

export const timing = {
  pingMs: 5 * 60 * 1000,          // idle limit is 10 min
  recycleMs: 110 * 60 * 1000,     // connection cap is 2 h: renew 10 min before
  stableMs: 60 * 1000,            // a connection that lived this long resets the backoff
  baseMs: 500, capMs: 30000,
};
// A debugging knob (and the browser tests' way to keep reconnects quick): numbers only, bounded.
try {
  const override = JSON.parse(sessionStorage.getItem('console.timing') || '{}');
  for (const [k, v] of Object.entries(override)) if (k in timing && Number.isFinite(v) && v >= 50) timing[k] = v;
} catch { /* ignored */ }

const handlers = new Map();       // event name or '*' -> Set(fn)
const stateListeners = new Set();
const reconnectListeners = new Set();
let wsUrl = null;
let socket = null;
let retiring = null;              // the socket being renewed: heard until its successor is live
let attempt = 0;
let state = 'offline';
let timers = [];
let retryTimer = null;
let everConnected = false;
let stopped = true;
export const stats = { connects: 0, messages: 0 };

export function setWsUrl(url) { wsUrl = url; }
export function currentState() { return state; }

export function on(event, fn) {
  if (!handlers.has(event)) handlers.set(event, new Set());
  handlers.get(event).add(fn);
  return () => handlers.get(event).delete(fn);
}
export function onState(fn) { stateListeners.add(fn); fn(state); return () => stateListeners.delete(fn); }
/** fn() runs after every (re)connection's system:connected: re-read over REST. */
export function onReconnect(fn) { reconnectListeners.add(fn); return () => reconnectListeners.delete(fn); }

function setState(next) {
  state = next;
  for (const fn of stateListeners) fn(state);
}

function clearTimers() { for (const t of timers) clearTimeout(t), clearInterval(t); timers = []; }

export function start() {
  stopped = false;
  connect();
}

export function stop() {
  stopped = true;
  clearTimers();
  clearTimeout(retryTimer);
  const old = socket;
  socket = null;
  if (old) old.close(1000, 'signed out');
  if (retiring) { retiring.close(1000, 'signed out'); retiring = null; }
  attempt = 0;
  everConnected = false;
  setState('offline');
}

function connect(renewing = false) {
  const auth = session();
  if (stopped || !auth) return;
  if (!wsUrl) { setState('unavailable'); return; }
  if (!renewing) setState(everConnected ? 'reconnecting' : 'connecting');
  // batch=1: a fan-out batch's events come in one system:batch message (docs/SCALE.md: fewer posts per socket).
  const url = `${wsUrl}${wsUrl.includes('?') ? '&' : '?'}batch=1&token=${encodeURIComponent(auth.socketToken())}`;
  let ws;
  try { ws = new WebSocket(url); } catch { scheduleRetry(); return; }
  socket = ws;
  let openedAt = 0;
  ws.onmessage = (message) => {
    if (socket !== ws && retiring !== ws) return;
    let parsed;
    try { parsed = JSON.parse(message.data); } catch { return; }
    if (!parsed || typeof parsed.event !== 'string') return;
    stats.messages += 1;
    if (parsed.event === 'system:connected') {
      if (retiring && retiring !== ws) { retiring.close(1000, 'renewed'); retiring = null; }
      openedAt = Date.now();
      stats.connects += 1;
      everConnected = true;
      setState('live');
      arm(ws);
      for (const fn of reconnectListeners) { try { fn(); } catch (e) { console.warn('refresh failed', e?.message); } }
    }
    if (parsed.event === 'system:batch') {
      for (const one of Array.isArray(parsed.data?.events) ? parsed.data.events : []) {
        if (one && typeof one.event === 'string') dispatch(one.event, one.data || {});
      }
      return;
    }
    dispatch(parsed.event, parsed.data || {});
  };
  ws.onclose = () => {
    if (retiring === ws) { retiring = null; return; }
    if (socket !== ws) return;   // replaced on purpose or stopped
    socket = null;
    clearTimers();
    if (openedAt && Date.now() - openedAt > timing.stableMs) attempt = 0;
    afterClose();
  };
  ws.onerror = () => {};          // onclose follows
}

function arm(ws) {
  clearTimers();
  timers.push(setInterval(() => {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ action: 'ping' }));
  }, timing.pingMs));
  timers.push(setTimeout(() => recycle(ws), timing.recycleMs));
}

/** A new credential (a person's refreshed token): reopen as at the 2-hour cap, without a gap. */
export function renew() {
  if (socket && socket.readyState === WebSocket.OPEN) recycle(socket);
}

/** Before the 2-hour cap: open a fresh socket; the old one is heard until the new one is live, then closed. */
function recycle(old) {
  clearTimers();
  retiring = old;
  socket = null;
  connect(true);
}

async function afterClose() {
  if (stopped) return;
  setState('reconnecting');
  // Closed by the server or refused: a revoked or expired key must sign the page out at once
  // (the REST probe answers 401 and api() signs out); anything else is the network: back off.
  try { await api('/agents', { query: { limit: 1 } }); } catch { /* 401 handled in api(); others: retry */ }
  if (!stopped && session()) scheduleRetry();
}

function scheduleRetry() {
  const ceiling = Math.min(timing.capMs, timing.baseMs * 2 ** attempt);
  attempt += 1;
  const delay = Math.random() * ceiling;   // full jitter
  clearTimeout(retryTimer);
  retryTimer = setTimeout(connect, delay);
}

function dispatch(event, data) {
  for (const key of [event, '*']) {
    for (const fn of handlers.get(key) || []) {
      try { fn(data, event); } catch (e) { console.warn('handler failed', event, e?.message); }
    }
  }
}
