// The approvals queue: approve or reject with a reason; a second decision shows who decided first.
import { h, clear, badge, when, route, table, json, confirmDialog, notice, field } from './dom.js';
import { api, all } from './api.js';
import { lifecycle, debounce, guarded, filterForm, heading } from './kit.js';

async function whoDecided(approvalId) {
  for (const status of ['approved', 'rejected']) {
    const page = await all('/approvals', { status }, 500).catch(() => ({ items: [] }));
    const found = page.items.find((a) => a.approvalId === approvalId);
    if (found) return found;
  }
  return null;
}

export async function decide(approval, decision, after) {
  const who = h('input', { name: 'decidedBy', required: true, autocomplete: 'off' });
  who.value = sessionStorage.getItem('console.decidedBy') || '';
  const reason = h('textarea', { name: 'comment', rows: '3' });
  const extra = h('div', {}, field('Your name', who), field(decision === 'approved' ? 'Comment' : 'Reason', reason));
  const verb = decision === 'approved' ? 'Approve' : 'Reject';
  if (!(await confirmDialog(`${verb} task`, `${verb} task ${approval.taskId} (${approval.task?.type ?? 'task'})?`, extra))) return;
  const decidedBy = who.value.trim() || 'console';
  sessionStorage.setItem('console.decidedBy', decidedBy);
  try {
    await api(`/approvals/${encodeURIComponent(approval.approvalId)}/decision`, { method: 'POST',
      body: { decision, decidedBy, comment: reason.value.trim() || undefined } });
    notice(`Task ${approval.taskId} ${decision}.`, 'ok');
  } catch (e) {
    if (e.status === 409) {
      const first = await whoDecided(approval.approvalId);
      notice(first ? `Already ${first.status} by ${first.decidedBy} at ${first.decidedAt}${first.comment ? ` (“${first.comment}”)` : ''}.`
        : e.message);
    } else notice(e.message);
  }
  after?.();
}

export function mount(main, { query, navigate }) {
  const life = lifecycle();
  const status = query.get('status') || 'pending';
  const note = h('p', { class: 'muted', 'aria-live': 'polite' });
  const { form } = filterForm('Filter approvals', [{ name: 'status', label: 'Status', options: ['pending', 'approved', 'rejected'] }],
    query, (values) => navigate(route(['approvals'], values)));
  const { el, tbody } = table(['Task', 'Requested by', 'Reason', 'Status', 'Decided', 'Actions'], 'Approvals');
  const detail = h('div');
  main.append(heading('Approvals'), form, note, el, detail);

  async function refresh() {
    const page = await guarded(all('/approvals', { status }, 500), note);
    if (!page) return;
    clear(tbody);
    for (const a of page.items) {
      const actions = a.status === 'pending' ? [
        h('button', { type: 'button', class: 'primary', onclick: () => decide(a, 'approved', refresh), 'aria-label': `Approve task ${a.taskId}` }, 'Approve'),
        h('button', { type: 'button', onclick: () => decide(a, 'rejected', refresh), 'aria-label': `Reject task ${a.taskId}` }, 'Reject')] : [];
      tbody.append(h('tr', { 'data-approval-id': a.approvalId },
        h('td', {}, h('button', { type: 'button', class: 'link', onclick: () => clear(detail).append(h('h2', {}, `Task ${a.taskId}`), json(a.task ?? a)) },
          a.task?.type ?? a.taskId), h('br'), h('code', {}, a.taskId)),
        h('td', {}, a.requestedBy), h('td', {}, a.reason || '—'), h('td', {}, badge(a.status)),
        h('td', {}, a.decidedBy ? [`${a.decidedBy} `, when(a.decidedAt), a.comment ? ` “${a.comment}”` : ''] : '—'),
        h('td', { class: 'actions' }, actions)));
    }
    note.textContent = `${page.items.length} ${status} approvals.`;
  }
  const later = debounce(refresh, 200);
  for (const e of ['approval:requested', 'approval:decided', 'task:updated']) life.on(e, later);
  refresh();
  return { refresh, unmount: life.end };
}

export { route };
