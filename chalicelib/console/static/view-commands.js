// Commands to an agent and their acks, live on command:issued and command:acked.
import { h, clear, append, badge, when, route, table, confirmDialog, notice, field, json } from './dom.js';
import { api, all } from './api.js';
import { lifecycle, debounce, guarded, heading, parseJson } from './kit.js';

export function mount(main, { query, navigate }) {
  const life = lifecycle();
  const agentId = query.get('agentId') || '';
  const note = h('p', { class: 'muted', 'aria-live': 'polite' });
  const agentSelect = h('select', { name: 'agentId' }, h('option', { value: '' }, 'choose an agent'));
  const statusSelect = h('select', { name: 'status' }, ['', 'pending', 'acked', 'failed', 'expired'].map((s) => h('option', { value: s, selected: s === (query.get('status') || '') }, s || 'any')));
  const chooser = h('form', { class: 'filters', role: 'search', 'aria-label': 'Choose the agent' },
    h('label', {}, h('span', {}, 'Agent'), agentSelect), h('label', {}, h('span', {}, 'Status'), statusSelect), h('button', { type: 'submit' }, 'Show'));
  chooser.addEventListener('submit', (e) => { e.preventDefault(); navigate(route(['commands'], { agentId: agentSelect.value, status: statusSelect.value })); });
  const type = h('input', { name: 'type', required: true, autocomplete: 'off' });
  const payload = h('textarea', { name: 'payload', rows: '2' });
  payload.value = '{}';
  const priority = h('select', { name: 'priority' }, ['normal', 'high', 'low'].map((p) => h('option', { value: p }, p)));
  const send = h('form', { class: 'create', 'aria-label': 'Send a command' }, field('Type', type), field('Payload (JSON)', payload), field('Priority', priority),
    h('button', { type: 'submit', class: 'primary', disabled: !agentId }, 'Send command'));
  send.addEventListener('submit', async (e) => {
    e.preventDefault();
    let body;
    try { body = { type: type.value.trim(), payload: parseJson(payload.value, 'Payload') }; } catch (err) { notice(err.message); return; }
    // `normal` is the contract's default: sent only when another priority is chosen.
    if (priority.value !== 'normal') body.priority = priority.value;
    if (!(await confirmDialog('Send command', `Send “${body.type}” to agent ${agentId}?`))) return;
    try { await api(`/agents/${encodeURIComponent(agentId)}/commands`, { method: 'POST', body }); notice('Command sent.', 'ok'); refresh(); } catch (err) { notice(err.message); }
  });
  const { el, tbody } = table(['Command', 'Type', 'Status', 'Created', 'Acked', 'Result'], 'Commands');
  main.append(heading('Commands'), chooser, h('details', { class: 'panel' }, h('summary', {}, 'Send a command'), send), note, el);

  // Re-reads overlap (the send's own, then command:issued's): only the newest one renders, and it
  // empties the table only when its rows are in hand, so two reads never both append their rows.
  let reads = 0;
  let settled = 0;   // reads finished, rendered or dropped as overtaken
  async function refresh() {
    const read = ++reads;
    el.dataset.reads = String(reads);   // data-reads / data-settled: a test waits until none is in flight
    try { await render(read); } finally { el.dataset.settled = String(++settled); }
  }
  async function render(read) {
    const agents = await guarded(all('/agents', {}, 500), note);
    if (read !== reads) return;
    if (agents) {
      append(clear(agentSelect), [h('option', { value: '' }, 'choose an agent'),
        agents.items.map((a) => h('option', { value: a.agentId, selected: a.agentId === agentId }, `${a.name} (${a.agentId})`))]);
    }
    if (!agentId) { clear(tbody); note.textContent = 'Choose an agent to see its commands.'; return; }
    const page = await guarded(api(`/agents/${encodeURIComponent(agentId)}/commands`, { query: { status: query.get('status') || undefined, limit: 100 } }), note);
    if (read !== reads || !page) return;
    clear(tbody);
    for (const c of page.items) {
      tbody.append(h('tr', { 'data-command-id': c.commandId }, h('td', {}, h('code', {}, c.commandId)), h('td', {}, c.type), h('td', {}, badge(c.status)),
        h('td', {}, when(c.createdAt)), h('td', {}, when(c.ackedAt)), h('td', {}, c.result !== undefined && c.result !== null ? json(c.result) : '—')));
    }
    note.textContent = `${page.items.length} commands.`;
  }
  const later = debounce(refresh, 300);
  life.on('command:issued', later);
  life.on('command:acked', later);
  refresh();
  return { refresh, unmount: life.end };
}
