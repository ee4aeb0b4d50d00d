// An instance's logs as a live tail: level filter, pause, "jump to newest". Memory stays flat:
// at most MAX_KEPT entries are kept (a ring) and at most MAX_ROWS rows are in the DOM.
import { h, clear } from './dom.js';
import { api } from './api.js';
import * as live from './live.js';

export const MAX_ROWS = 500;
export const MAX_KEPT = 1000;
const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];
const RANK = Object.fromEntries(LEVELS.map((l, i) => [l, i]));

export function logTail(instanceId) {
  const kept = [];                      // newest last, at most MAX_KEPT
  const seen = new Set();               // ids of kept entries (dedupe REST vs events)
  let paused = false;
  let missed = 0;
  let lastTimestamp = null;
  let minLevel = 'TRACE';
  const level = h('select', { name: 'level', 'aria-label': 'Minimum level' },
    LEVELS.map((l) => h('option', { value: l }, l === 'TRACE' ? 'all levels' : `${l} and above`)));
  const pause = h('button', { type: 'button', 'aria-pressed': 'false' }, 'Pause');
  const jump = h('button', { type: 'button', disabled: true }, 'Jump to newest');
  const state = h('span', { class: 'muted', 'aria-live': 'polite' });
  const list = h('ol', { class: 'logs', 'aria-label': `Log lines of instance ${instanceId}`, tabindex: '0' });
  const el = h('section', { class: 'logtail', 'aria-label': 'Log tail' },
    h('div', { class: 'toolbar' }, h('label', {}, 'Level ', level), pause, jump, state), list);

  const visible = (entry) => (RANK[String(entry.level).toUpperCase()] ?? 2) >= RANK[minLevel];
  function row(entry) {
    const lvl = String(entry.level || 'INFO').toUpperCase();
    return h('li', { class: `log log-${lvl.toLowerCase()}`, 'data-id': entry.id },
      h('time', { datetime: entry.timestamp }, String(entry.timestamp || '').replace('T', ' ').replace('Z', '')),
      h('span', { class: `lvl badge badge-${lvl.toLowerCase()}` }, lvl),
      h('span', { class: 'msg' }, String(entry.message ?? '')),
      entry.fields && Object.keys(entry.fields).length ? h('span', { class: 'fields' }, JSON.stringify(entry.fields)) : null);
  }
  function atBottom() { return list.scrollHeight - list.scrollTop - list.clientHeight < 40; }
  function trim() { while (list.childElementCount > MAX_ROWS) list.firstElementChild.remove(); }
  function status() {
    state.textContent = paused ? `Paused: ${missed} new line${missed === 1 ? '' : 's'} waiting.` : `Live: ${list.childElementCount} lines shown.`;
  }
  function keep(entries) {
    const fresh = [];
    for (const entry of entries) {
      if (!entry || seen.has(entry.id)) continue;
      seen.add(entry.id);
      kept.push(entry);
      fresh.push(entry);
      if (entry.timestamp && (!lastTimestamp || entry.timestamp > lastTimestamp)) lastTimestamp = entry.timestamp;
    }
    while (kept.length > MAX_KEPT) seen.delete(kept.shift().id);
    return fresh;
  }
  function show(entries) {
    if (paused) { missed += entries.filter(visible).length; status(); return; }
    const stick = atBottom();
    const fragment = document.createDocumentFragment();
    for (const entry of entries.slice(-MAX_ROWS)) if (visible(entry)) fragment.append(row(entry));
    list.append(fragment);
    trim();
    if (stick) list.scrollTop = list.scrollHeight;
    status();
  }
  function repaint() {
    clear(list);
    const fragment = document.createDocumentFragment();
    for (const entry of kept.filter(visible).slice(-MAX_ROWS)) fragment.append(row(entry));
    list.append(fragment);
    list.scrollTop = list.scrollHeight;
    status();
  }
  level.addEventListener('change', () => { minLevel = level.value; repaint(); });
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.setAttribute('aria-pressed', String(paused));
    pause.textContent = paused ? 'Resume' : 'Pause';
    jump.disabled = !paused;
    if (!paused) { missed = 0; repaint(); } else status();
  });
  jump.addEventListener('click', () => {
    paused = false; missed = 0;
    pause.setAttribute('aria-pressed', 'false'); pause.textContent = 'Pause'; jump.disabled = true;
    repaint();
    list.lastElementChild?.scrollIntoView({ block: 'end' });
  });

  const off = live.on('instance:log', (data) => {
    if (data.instanceId !== instanceId) return;
    show(keep(data.entries || []));
  });

  async function refresh() {
    // Catch up on what was written while away: strictly after the newest line seen.
    const query = lastTimestamp ? { since: lastTimestamp, limit: 1000 } : { limit: 200 };
    try {
      const entries = await api(`/instances/${encodeURIComponent(instanceId)}/logs`, { query });
      show(keep(Array.isArray(entries) ? entries : []));
    } catch (e) { state.textContent = e.message; }
  }
  refresh();
  return { el, refresh, destroy: off };
}
