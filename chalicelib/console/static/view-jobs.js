// Jobs: a table with status/pool/agent/text filters and live progress bars; create, cancel, retry.
// Rows are kept in a Map by jobId and patched in place when an event arrives (no re-render).
import { h, clear, badge, when, route, table, progress, confirmDialog, notice, field } from './dom.js';
import { api } from './api.js';
import { lifecycle, guarded, filterForm, heading, parseJson } from './kit.js';

const STATUSES = ['', 'QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'];
const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

export async function cancelJob(job, after) {
  if (!(await confirmDialog('Cancel job', `Cancel job ${job.jobId} (${job.type})? An agent working on it stops at its next report.`))) return;
  try { await api(`/jobs/${encodeURIComponent(job.jobId)}/cancel`, { method: 'POST' }); notice(`Job ${job.jobId} cancelled.`, 'ok'); } catch (e) { notice(e.message); }
  after?.();
}

/** Retry = a new job with the same target, type, payload and limits (the contract has no retry route). */
export async function retryJob(job, after) {
  if (!(await confirmDialog('Retry job', `Queue a new job like ${job.jobId} (${job.type}) for ${job.agentId ? `agent ${job.agentId}` : `pool ${job.pool}`}?`))) return;
  const body = { type: job.type, payload: job.payload ?? {}, priority: job.priority };
  if (job.agentId) body.agentId = job.agentId; else body.pool = job.pool;
  try {
    const created = await api('/jobs', { method: 'POST', body });
    notice(`Queued job ${created.jobId}.`, 'ok');
  } catch (e) { notice(e.message); }
  after?.();
}

export function actionsFor(job, after) {
  const buttons = [];
  if (!TERMINAL.has(job.status)) buttons.push(h('button', { type: 'button', onclick: () => cancelJob(job, after), 'aria-label': `Cancel job ${job.jobId}` }, 'Cancel'));
  if (job.status === 'FAILED' || job.status === 'CANCELLED') buttons.push(h('button', { type: 'button', onclick: () => retryJob(job, after), 'aria-label': `Retry job ${job.jobId}` }, 'Retry'));
  return buttons;
}

function createForm(onCreated) {
  const kind = h('select', { name: 'targetKind' }, h('option', { value: 'pool' }, 'pool'), h('option', { value: 'agentId' }, 'agent id'));
  const target = h('input', { name: 'target', required: true, autocomplete: 'off' });
  const type = h('input', { name: 'type', required: true, autocomplete: 'off' });
  const payload = h('textarea', { name: 'payload', rows: '3' });
  payload.value = '{}';
  const priority = h('input', { name: 'priority', type: 'number', min: '0', max: '1000' });
  priority.value = '0';
  const form = h('form', { class: 'create', 'aria-label': 'Queue a job' },
    field('Target', kind), field('Pool or agent id', target), field('Type', type), field('Payload (JSON)', payload),
    field('Priority', priority), h('button', { type: 'submit', class: 'primary' }, 'Queue job'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    let body;
    try {
      body = { type: type.value.trim(), payload: parseJson(payload.value, 'Payload'), priority: Number(priority.value || 0) };
    } catch (e) { notice(e.message); return; }
    body[kind.value] = target.value.trim();
    if (!(await confirmDialog('Queue job', `Queue a "${body.type}" job for ${kind.value === 'pool' ? 'pool' : 'agent'} ${body[kind.value]}?`))) return;
    try {
      const job = await api('/jobs', { method: 'POST', body });
      notice(`Queued job ${job.jobId}.`, 'ok');
      onCreated(job);
    } catch (e) { notice(e.message); }
  });
  return h('details', { class: 'panel' }, h('summary', {}, 'Queue a job'), form);
}

export function mount(main, { query, navigate }) {
  const life = lifecycle();
  const want = { status: (query.get('status') || '').toUpperCase(), pool: query.get('pool') || '', agentId: query.get('agentId') || '' };
  const limit = Math.max(1, Math.min(1000, Number(query.get('limit')) || 100));
  const status = h('p', { class: 'muted', 'aria-live': 'polite' });
  const { form, controls } = filterForm('Filter jobs', [
    { name: 'status', label: 'Status', options: STATUSES },
    { name: 'pool', label: 'Pool' },
    { name: 'agentId', label: 'Agent' },
    { name: 'q', label: 'Text', placeholder: 'id, type, payload' },
  ], query, (values) => navigate(route(['jobs'], { ...values, limit: query.get('limit') })));
  const { el, tbody } = table(['Job', 'Status', 'Target', 'Progress', 'Attempts', 'Updated', 'Actions'], 'Jobs');
  const more = h('button', { type: 'button', hidden: true }, 'Load more');
  main.append(heading('Jobs'), createForm((job) => upsert(job, true)), form, status, el, more);
  const rows = new Map();    // jobId -> {tr, job, cells}
  let nextToken = null;
  let text = (query.get('q') || '').toLowerCase();

  controls.q.addEventListener('input', () => {
    text = controls.q.value.trim().toLowerCase();
    for (const row of rows.values()) row.tr.hidden = !matchesText(row.job);
    const params = new URLSearchParams(query);
    if (text) params.set('q', controls.q.value.trim()); else params.delete('q');
    history.replaceState(null, '', `#/jobs${params.toString() ? `?${params}` : ''}`);
    count();
  });

  function matchesText(job) {
    if (!text) return true;
    let payload = '';
    try { payload = JSON.stringify(job.payload ?? ''); } catch { /* shown as is */ }
    return [job.jobId, job.type, job.agentId, job.pool, job.claimedBy, job.progressMessage, payload]
      .some((s) => s && String(s).toLowerCase().includes(text));
  }
  function matchesServer(job) {
    return (!want.status || job.status === want.status) && (!want.pool || job.pool === want.pool)
      && (!want.agentId || job.agentId === want.agentId || job.claimedBy === want.agentId);
  }
  function count() {
    const visible = [...rows.values()].filter((r) => !r.tr.hidden).length;
    status.textContent = `${visible} jobs shown${nextToken ? ' (more available)' : ''}.`;
  }

  function build(job) {
    const cells = {
      job: h('td'), status: h('td'), target: h('td'), progress: h('td'), attempts: h('td'), updated: h('td'), actions: h('td'),
    };
    const tr = h('tr', { 'data-job-id': job.jobId }, Object.values(cells));
    return { tr, cells, job };
  }
  function fill(row) {
    const { job, cells } = row;
    clear(cells.job).append(h('a', { href: route(['jobs', job.jobId]) }, job.type || '(no type)'), h('br'), h('code', {}, job.jobId));
    clear(cells.status).append(badge(job.status));
    clear(cells.target).append(job.agentId ? `agent ${job.agentId}` : `pool ${job.pool ?? '—'}`,
      job.claimedBy ? h('span', { class: 'muted' }, ` · on ${job.claimedBy}`) : '');
    fillProgress(row);
    cells.attempts.textContent = String(job.attempts ?? 0);
    clear(cells.updated).append(when(job.updatedAt || job.at || job.createdAt));
    clear(cells.actions).append(...actionsFor(job, null));
    row.tr.hidden = !matchesText(job);
  }
  function fillProgress(row) {
    clear(row.cells.progress).append(progress(row.job.progressPercent, row.job.progressMessage));
  }

  function upsert(job, atTop = false) {
    let row = rows.get(job.jobId);
    if (!row) {
      if (!matchesServer(job)) return;
      row = build(job);
      rows.set(job.jobId, row);
      if (atTop) tbody.prepend(row.tr); else tbody.append(row.tr);
    } else {
      row.job = { ...row.job, ...job };
    }
    fill(row);
    count();
  }

  /** An event: patch the row in place (progress alone touches only its cell). */
  function apply(data, event) {
    const row = rows.get(data.jobId);
    if (!row) {
      // A job new to this view (queued, or moved into the status the view is filtered on): read it whole.
      if (event === 'job:queued' || (want.status && data.status === want.status)) {
        api(`/jobs/${encodeURIComponent(data.jobId)}`).then((job) => upsert(job, true)).catch(() => {});
      }
      return;
    }
    const changes = { ...data };
    delete changes.at;
    changes.updatedAt = data.at || row.job.updatedAt;
    const statusChanged = data.status && data.status !== row.job.status;
    row.job = { ...row.job, ...changes };
    if (event === 'job:progress' && !statusChanged) {
      fillProgress(row);
      clear(row.cells.updated).append(when(row.job.updatedAt));
    } else {
      fill(row);
    }
    if (want.status && row.job.status !== want.status) { row.tr.remove(); rows.delete(data.jobId); count(); }
  }

  async function load(append = false) {
    const filters = { status: want.status || undefined, pool: want.pool || undefined, agentId: want.agentId || undefined };
    let token = append ? nextToken : undefined;
    const fresh = [];
    do {
      const page = await guarded(api('/jobs', { query: { ...filters, limit: Math.min(100, limit - fresh.length), nextToken: token } }), status);
      if (!page) return;
      fresh.push(...page.items);
      token = page.nextToken;
    } while (token && fresh.length < limit);
    nextToken = token;
    if (!append) { rows.clear(); clear(tbody); }
    const fragment = document.createDocumentFragment();
    for (const job of fresh) {
      if (rows.has(job.jobId)) continue;
      const row = build(job);
      rows.set(job.jobId, row);
      fill(row);
      fragment.append(row.tr);
    }
    tbody.append(fragment);
    more.hidden = !nextToken;
    count();
    main.dataset.ready = 'jobs';
    if (!append) performance.mark('console:jobs-ready');
  }
  more.addEventListener('click', () => load(true));

  for (const event of ['job:queued', 'job:progress', 'job:completed', 'job:failed', 'job:cancelled']) life.on(event, apply);
  load();
  return { refresh: () => load(false), unmount: life.end };
}
