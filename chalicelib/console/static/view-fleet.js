// Fleet: every agent with status, pools, tags, last seen, current job; stale agents stand out.
// The contract has no agent event, so the view re-reads every few seconds while open (and on every job event
// that names an agent it does not know); job events keep the "current job" column live.
import { h, clear, badge, when, route, table, progress } from './dom.js';
import { api, all } from './api.js';
import { lifecycle, debounce, guarded, filterForm, heading } from './kit.js';

export const STALE_MS = 2 * 60 * 1000;
const POLL_MS = 5000;

function tagList(tags) {
  if (!tags) return [];
  if (Array.isArray(tags)) return tags.map(String);
  return Object.entries(tags).map(([k, v]) => `${k}=${v}`);
}

export function mount(main, { query, navigate }) {
  const life = lifecycle();
  const status = h('p', { class: 'muted', 'aria-live': 'polite' });
  const { form } = filterForm('Filter agents', [
    { name: 'pool', label: 'Pool' },
    { name: 'status', label: 'Status', options: ['', 'active', 'inactive'] },
    { name: 'q', label: 'Text', placeholder: 'name, id or tag' },
  ], query, (values) => navigate(route(['fleet'], values)));
  const { el, tbody } = table(['Agent', 'Status', 'Pools', 'Tags', 'Last seen', 'Current job'], 'Agents');
  main.append(heading('Fleet'), form, status, el);
  let agents = [];
  const running = new Map();   // agentId -> job
  const known = new Set();

  function paint() {
    clear(tbody);
    const text = (query.get('q') || '').toLowerCase();
    const wanted = query.get('status');
    let shown = 0;
    let stale = 0;
    for (const agent of agents) {
      const tags = tagList(agent.tags);
      if (wanted && agent.status !== wanted) continue;
      if (text && ![agent.name, agent.agentId, ...tags, ...(agent.pools || [])].some((s) => String(s).toLowerCase().includes(text))) continue;
      const seen = agent.lastSeenAt ? Date.parse(agent.lastSeenAt) : NaN;
      const isStale = agent.status === 'active' && (Number.isNaN(seen) || Date.now() - seen > STALE_MS);
      if (isStale) stale += 1;
      const job = running.get(agent.agentId);
      tbody.append(h('tr', { class: isStale ? 'stale' : '', 'data-agent-id': agent.agentId },
        h('td', {}, h('strong', {}, agent.name), h('br'), h('code', {}, agent.agentId)),
        h('td', {}, badge(agent.status), isStale ? h('span', { class: 'badge badge-stale' }, 'stale') : null),
        h('td', {}, (agent.pools || []).join(', ') || '—'),
        h('td', {}, tags.map((t) => h('span', { class: 'tag' }, t))),
        h('td', {}, when(agent.lastSeenAt)),
        h('td', {}, job ? [h('a', { href: route(['jobs', job.jobId]) }, job.type || job.jobId), ' ',
          progress(job.progressPercent)] : '—')));
      shown += 1;
    }
    status.textContent = `${shown} of ${agents.length} agents shown; ${stale} stale (no heartbeat for 2 min).`;
  }

  async function refresh() {
    const [agentPage, jobPage] = await Promise.all([
      guarded(all('/agents', { pool: query.get('pool') || undefined }, 1000), status),
      guarded(all('/jobs', { status: 'RUNNING' }, 500)),
    ]);
    if (!agentPage) return;
    agents = agentPage.items;
    known.clear();
    for (const a of agents) known.add(a.agentId);
    running.clear();
    for (const job of jobPage?.items || []) if (job.claimedBy || job.agentId) running.set(job.claimedBy || job.agentId, job);
    paint();
  }

  const later = debounce(refresh, 250);
  life.on('job:progress', (data) => {
    const job = running.get(data.claimedBy) || { jobId: data.jobId };
    running.set(data.claimedBy, { ...job, ...data });
    if (!known.has(data.claimedBy)) later(); else paint();
  });
  for (const event of ['job:completed', 'job:failed', 'job:cancelled', 'job:queued']) life.on(event, later);
  life.every(POLL_MS, refresh);
  refresh();
  return { refresh, unmount: life.end };
}

export { api };
