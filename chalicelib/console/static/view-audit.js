// The audit trail with filters (entity type and id, trace id, since); newest pages on demand.
import { h, clear, when, route, table, json } from './dom.js';
import { api } from './api.js';
import { lifecycle, guarded, filterForm, heading } from './kit.js';

export function mount(main, { query, navigate }) {
  const life = lifecycle();
  const note = h('p', { class: 'muted', 'aria-live': 'polite' });
  const { form } = filterForm('Filter the audit trail', [
    { name: 'entityType', label: 'Entity type', placeholder: 'job, task, key…' }, { name: 'entityId', label: 'Entity id' },
    { name: 'traceId', label: 'Trace id' }, { name: 'since', label: 'Since (ISO time)' },
  ], query, (values) => navigate(route(['audit'], values)));
  const { el, tbody } = table(['When', 'Entity', 'Action', 'Actor', 'Trace', 'Details'], 'Audit events');
  const more = h('button', { type: 'button', hidden: true }, 'Load more');
  main.append(heading('Audit trail'), h('p', { class: 'muted' }, 'Entity type and entity id go together (e.g. job and a job id).'),
    form, note, el, more);
  let nextToken = null;
  let shown = 0;

  async function load(append) {
    const q = {};
    for (const k of ['entityType', 'entityId', 'traceId', 'since']) if (query.get(k)) q[k] = query.get(k);
    const page = await guarded(api('/audit', { query: { ...q, limit: 100, nextToken: append ? nextToken : undefined } }), note);
    if (!page) return;
    if (!append) { clear(tbody); shown = 0; }
    for (const e of page.items) {
      tbody.append(h('tr', {}, h('td', {}, when(e.at)), h('td', {}, `${e.entityType} `, h('code', {}, e.entityId)), h('td', {}, e.action),
        h('td', {}, e.actor), h('td', {}, e.traceId ? h('a', { href: route(['audit'], { traceId: e.traceId }) }, e.traceId) : '—'),
        h('td', {}, e.details && Object.keys(e.details).length ? h('details', {}, h('summary', {}, 'details'), json(e.details)) : '—')));
    }
    shown += page.items.length;
    nextToken = page.nextToken;
    more.hidden = !nextToken;
    note.textContent = `${shown} events shown${nextToken ? '; more available' : ''}.`;
  }
  more.addEventListener('click', () => load(true));
  load(false);
  return { refresh: () => load(false), unmount: life.end };
}
