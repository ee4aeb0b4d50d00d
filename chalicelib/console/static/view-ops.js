// Ops: the summary (counts by status and severity) and the issues, filterable, each claimable.
import { h, clear, badge, when, route, table, confirmDialog, notice, field, externalLink } from './dom.js';
import { api } from './api.js';
import { lifecycle, debounce, guarded, filterForm, heading } from './kit.js';

export function mount(main, { query, navigate }) {
  const life = lifecycle();
  const note = h('p', { class: 'muted', 'aria-live': 'polite' });
  const summary = h('div', { class: 'summary' });
  const { form } = filterForm('Filter ops issues', [
    { name: 'severity', label: 'Severity', options: ['', 'critical', 'high', 'medium', 'low'] },
    { name: 'status', label: 'Status', options: ['', 'open', 'in_progress', 'resolved', 'closed'] },
  ], query, (values) => navigate(route(['ops'], values)));
  const { el, tbody } = table(['Severity', 'Status', 'Issue', 'Kind', 'Count', 'Last seen', 'Claimed by', 'Actions'], 'Ops issues');
  main.append(heading('Ops'), summary, form, note, el);

  async function claim(issue) {
    const who = h('input', { name: 'claimedBy', required: true, autocomplete: 'off' });
    who.value = sessionStorage.getItem('console.decidedBy') || '';
    if (!(await confirmDialog('Claim issue', `Claim “${issue.title}”? It moves to in_progress and GitHub gets a comment.`, h('div', {}, field('Your name', who))))) return;
    try {
      await api(`/api/ops/issues/${encodeURIComponent(issue.id)}/claim`, { method: 'POST', body: { claimedBy: who.value.trim() || 'console' } });
      notice('Issue claimed.', 'ok');
    } catch (e) { notice(e.message); }
    refresh();
  }

  async function refresh() {
    const [s, page] = await Promise.all([
      guarded(api('/api/ops/summary')),
      guarded(api('/api/ops/issues', { query: { severity: query.get('severity') || undefined, status: query.get('status') || undefined, limit: 200 } }), note),
    ]);
    if (s) {
      clear(summary).append(h('p', {}, `${s.total} issues; ${s.notFiled} not filed on GitHub.`),
        h('dl', { class: 'facts' }, Object.entries(s.byStatus || {}).map(([k, v]) => [h('dt', {}, badge(k)), h('dd', {}, String(v))]),
          Object.entries(s.bySeverity || {}).map(([k, v]) => [h('dt', {}, badge(k)), h('dd', {}, String(v))])));
    }
    if (!page) return;
    clear(tbody);
    for (const i of page.items) {
      tbody.append(h('tr', { 'data-issue-id': i.id }, h('td', {}, badge(i.severity)), h('td', {}, badge(i.status)),
        h('td', {}, h('span', { class: 'issue-title' }, i.title), i.githubUrl ? [' ', externalLink(i.githubUrl, `#${i.githubNumber ?? 'GitHub'}`)] : null),
        h('td', {}, i.kind), h('td', {}, String(i.count)), h('td', {}, when(i.lastSeen)), h('td', {}, i.claimedBy || '—'),
        h('td', {}, i.status === 'open' ? h('button', { type: 'button', onclick: () => claim(i), 'aria-label': `Claim issue ${i.title}` }, 'Claim') : null)));
    }
    note.textContent = `${page.items.length} issues shown.`;
  }
  life.on('ops:issue', debounce(refresh, 300));
  refresh();
  return { refresh, unmount: life.end };
}
