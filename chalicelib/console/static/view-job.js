// One job: its state, attempts and history, progress history, result or error, and its instance's logs.
// The instance: `?instance=` in the URL, else the job payload's `instanceId` (docs/CONSOLE.md).
import { h, clear, append, badge, when, route, progress, json, notice } from './dom.js';
import { api } from './api.js';
import { lifecycle, guarded, heading } from './kit.js';
import { actionsFor } from './view-jobs.js';
import { logTail } from './logtail.js';

const HISTORY_MAX = 200;

export function mount(main, { id, query, navigate }) {
  const life = lifecycle();
  const summary = h('div', { class: 'job-summary' });
  const history = h('ol', { class: 'history', 'aria-label': 'Progress history' });
  const audit = h('div');
  const logsSlot = h('div');
  main.append(heading('Job', h('a', { href: route(['jobs']) }, '← all jobs')),
    summary,
    h('section', { 'aria-labelledby': 'h-progress' }, h('h2', { id: 'h-progress' }, 'Progress history'), history),
    h('section', { 'aria-labelledby': 'h-attempts' }, h('h2', { id: 'h-attempts' }, 'Attempts and changes'), audit),
    h('section', { 'aria-labelledby': 'h-logs' }, h('h2', { id: 'h-logs' }, 'Instance logs'), logsSlot));
  let job = null;
  let tail = null;
  const points = [];

  function addPoint(p) {
    const key = `${p.runId || ''}:${p.progressPercent}:${p.progressMessage || ''}`;
    if (points.some((x) => x.key === key)) return;
    points.push({ ...p, key });
    if (points.length > HISTORY_MAX) points.shift();
    history.append(h('li', {}, when(p.at), ' ', progress(p.progressPercent, p.progressMessage)));
    while (history.childElementCount > HISTORY_MAX) history.firstElementChild.remove();
  }

  function paint() {
    const rows = [
      ['Job id', h('code', {}, job.jobId)], ['Type', job.type], ['Status', badge(job.status)],
      ['Target', job.agentId ? `agent ${job.agentId}` : `pool ${job.pool}`], ['Claimed by', job.claimedBy || '—'],
      ['Attempts', String(job.attempts ?? 0)], ['Priority', String(job.priority ?? 0)],
      ['Created', when(job.createdAt)], ['Started', when(job.startedAt)], ['Finished', when(job.finishedAt)],
      ['Progress', progress(job.progressPercent, job.progressMessage)],
    ];
    append(clear(summary), [
      h('dl', { class: 'facts' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
      h('div', { class: 'actions' }, actionsFor(job, refresh)),
      h('h2', {}, 'Payload'), json(job.payload),
      job.result !== undefined ? [h('h2', {}, 'Result'), json(job.result)] : null,
      job.error !== undefined ? [h('h2', {}, 'Error'), json(job.error)] : null]);
  }

  function instanceId() {
    const fromPayload = job && job.payload && typeof job.payload === 'object' ? job.payload.instanceId : null;
    return query.get('instance') || (typeof fromPayload === 'string' ? fromPayload : null);
  }

  function paintLogs() {
    const iid = instanceId();
    if (tail && tail.instanceId === iid) return;
    tail?.destroy();
    tail = null;
    const input = h('input', { name: 'instance', autocomplete: 'off', 'aria-label': 'Instance id' });
    input.value = iid || '';
    const chooser = h('form', { class: 'filters', 'aria-label': 'Choose the instance' }, h('label', {}, 'Instance ', input),
      h('button', { type: 'submit' }, 'Show logs'));
    chooser.addEventListener('submit', (e) => { e.preventDefault(); navigate(route(['jobs', id], { instance: input.value.trim() })); });
    clear(logsSlot).append(chooser);
    if (!iid) { logsSlot.append(h('p', { class: 'muted' }, 'This job names no instance (payload.instanceId); choose one.')); return; }
    tail = logTail(iid);
    tail.instanceId = iid;
    logsSlot.append(tail.el);
  }

  async function refresh() {
    const fresh = await guarded(api(`/jobs/${encodeURIComponent(id)}`), summary);
    if (!fresh) return;
    job = fresh;
    paint();
    if (job.progressPercent !== undefined) addPoint({ at: job.updatedAt, progressPercent: job.progressPercent, progressMessage: job.progressMessage });
    const events = await guarded(api('/audit', { query: { entityType: 'job', entityId: id, limit: 100 } }));
    clear(audit).append(events && events.items.length
      ? h('ol', { class: 'history' }, events.items.map((e) => h('li', {}, when(e.at), ' ', h('strong', {}, e.action), ` by ${e.actor}`,
        e.details && Object.keys(e.details).length ? h('span', { class: 'fields' }, ` ${JSON.stringify(e.details)}`) : null)))
      : h('p', { class: 'muted' }, `Attempt ${job.attempts ?? 0}; no recorded changes.`));
    paintLogs();
    tail?.refresh();
  }

  function apply(data, event) {
    if (!job || data.jobId !== id) return;
    const changes = { ...data };
    delete changes.at;
    job = { ...job, ...changes, updatedAt: data.at || job.updatedAt };
    if (event === 'job:progress') addPoint(data);
    paint();
    if (event !== 'job:progress') refresh();
  }
  for (const event of ['job:queued', 'job:progress', 'job:completed', 'job:failed', 'job:cancelled']) life.on(event, apply);
  life.add(() => tail?.destroy());
  refresh().catch((e) => notice(e.message));
  return { refresh, unmount: life.end };
}
