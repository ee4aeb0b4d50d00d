// Patches: the live stream of patch events, a batch's per-file results, and stats/trends as charts.
import { h, clear, badge, when, route, table, notice } from './dom.js';
import { api } from './api.js';
import { lifecycle, debounce, guarded, filterForm, heading } from './kit.js';
import * as charts from './charts.js';

const STREAM_MAX = 200;

export function mount(main, { query, navigate }) {
  const life = lifecycle();
  const note = h('p', { class: 'muted', 'aria-live': 'polite' });
  const { form } = filterForm('Filter patch events', [
    { name: 'file', label: 'File' }, { name: 'search', label: 'Text' }, { name: 'taskId', label: 'Task' },
  ], query, (values) => navigate(route(['patches'], values)));
  const stream = table(['When', 'Status', 'Operation', 'File', 'Batch', 'Order / factory', 'Error'], 'Patch events, newest first');
  const batch = h('section', { 'aria-label': 'Batch results' });
  const chartBox = h('div', { class: 'charts' });
  const trendBox = h('div');
  main.append(heading('Patches'), form, note,
    h('section', { 'aria-labelledby': 'h-charts' }, h('h2', { id: 'h-charts' }, 'Stats and trends'), chartBox, trendBox),
    batch,
    h('section', { 'aria-labelledby': 'h-stream' }, h('h2', { id: 'h-stream' }, 'Live stream'), stream.el));

  function eventRow(e, status) {
    return h('tr', { 'data-event-id': e.eventId || '' },
      h('td', {}, when(e.at)), h('td', {}, badge(status || e.status)), h('td', {}, e.op || 'batch'),
      h('td', {}, e.file ? h('code', {}, e.file) : '—'),
      h('td', {}, h('a', { href: route(['patches'], { ...Object.fromEntries(query), batchId: e.batchId }) }, e.batchId)),
      h('td', {}, [e.orderId, e.factory].filter(Boolean).join(' / ') || '—'), h('td', {}, e.error || ''));
  }

  async function showBatch(batchId) {
    if (!batchId) { clear(batch); return; }
    const view = await guarded(api(`/api/patches/batches/${encodeURIComponent(batchId)}`), batch);
    if (!view) return;
    const results = table(['#', 'File', 'Operation', 'Status', 'Matched by', 'Error'], `Per-file results of batch ${view.batchId}`);
    for (const r of view.results || []) {
      results.tbody.append(h('tr', {}, h('td', {}, String(r.index)), h('td', {}, h('code', {}, r.file)), h('td', {}, r.op),
        h('td', {}, badge(r.status)), h('td', {}, r.matchedBy || '—'), h('td', {}, r.error || '')));
    }
    clear(batch).append(h('h2', {}, `Batch ${view.batchId}`),
      h('p', {}, 'Workspace ', h('code', {}, view.workspace), ' · ', badge(view.status), ' · requested ', when(view.requestedAt)), results.el);
  }

  async function stats() {
    const [s, trends] = await Promise.all([guarded(api('/api/patches/stats')), guarded(api('/api/patches/trends', { query: { groupBy: 'weekly' } }))]);
    if (!s) return;
    clear(chartBox);
    charts.daily(chartBox, s.daily || []);
    charts.errorRate(chartBox, s.daily || []);
    const factories = s.successRateByFactory || [];
    charts.bars(chartBox, 'Success rate per factory (%)', factories.map((f) => f.factory), factories.map((f) => Math.round(f.rate * 1000) / 10), 'success %', '#1b7f3b', true);
    const ops = Object.entries(s.operations || {});
    charts.bars(chartBox, 'Operations by kind', ops.map(([k]) => k), ops.map(([, v]) => v), 'operations');
    clear(trendBox);
    if (Array.isArray(trends) && trends.length) {
      const t = table(['Week', 'Total', 'Applied', 'Failed', 'Success rate'], 'Weekly trend');
      for (const w of trends) t.tbody.append(h('tr', {}, [w.key, w.total, w.applied, w.failed, `${Math.round((w.successRate ?? 0) * 1000) / 10}%`].map((c) => h('td', {}, String(c)))));
      trendBox.append(t.el);
    }
    main.dataset.ready = 'patches';
  }

  async function refresh() {
    const page = await guarded(api('/api/patches/logs', { query: { file: query.get('file') || undefined, search: query.get('search') || undefined,
      taskId: query.get('taskId') || undefined, limit: 100, order: 'desc' } }), note);
    if (page) {
      clear(stream.tbody);
      for (const e of page.items) stream.tbody.append(eventRow(e));
      note.textContent = `${page.items.length} recent events${page.hasMore ? ' (older ones not shown)' : ''}.`;
    }
    await Promise.all([stats(), showBatch(query.get('batchId'))]);
  }

  const restat = debounce(stats, 800);
  for (const name of ['patch:requested', 'patch:applied', 'patch:failed', 'patch:rejected']) {
    life.on(name, (data) => {
      if (query.get('file') || query.get('search') || query.get('taskId')) return;   // filtered: REST decides
      stream.tbody.prepend(eventRow(data, name.slice(6)));
      while (stream.tbody.childElementCount > STREAM_MAX) stream.tbody.lastElementChild.remove();
      restat();
      if (data.batchId && data.batchId === query.get('batchId')) showBatch(data.batchId);
    });
  }
  refresh().catch((e) => notice(e.message));
  return { refresh, unmount: () => { restat.cancel(); life.end(); } };
}
