// Sessions and their tasks (fetch_status), live on session:updated and task:updated.
import { h, clear, badge, when, route, table, json } from './dom.js';
import { api } from './api.js';
import { lifecycle, debounce, guarded, filterForm, heading } from './kit.js';

const SESSION_STATUSES = ['', 'pending', 'active', 'completed', 'failed', 'expired'];
const TASK_STATUSES = ['', 'pending', 'awaiting_approval', 'in_progress', 'completed', 'failed', 'rejected'];

export function mount(main, { query, navigate }) {
  const life = lifecycle();
  const selected = query.get('sessionId') || '';
  const note = h('p', { class: 'muted', 'aria-live': 'polite' });
  const { form } = filterForm('Filter sessions and tasks', [
    { name: 'status', label: 'Session status', options: SESSION_STATUSES },
    { name: 'taskStatus', label: 'Task status', options: TASK_STATUSES },
    { name: 'toRole', label: 'Task role' },
  ], query, (values) => navigate(route(['sessions'], { ...values, sessionId: selected })));
  const sessions = table(['Session', 'Role', 'Status', 'Task', 'Updated'], 'Sessions');
  const tasks = table(['Task', 'Type', 'From → to', 'Status', 'Approval', 'Updated'], selected ? `Tasks of session ${selected}` : 'Tasks');
  const detail = h('div');
  main.append(heading('Sessions and tasks'), form, note,
    h('section', {}, sessions.el), h('section', {}, tasks.el, detail));

  async function refresh() {
    const [list, taskPage] = await Promise.all([
      guarded(api('/sessions', { query: { status: query.get('status') || undefined, page: 1, pageSize: 100 } }), note),
      guarded(api('/tasks', { query: { status: query.get('taskStatus') || undefined, toRole: query.get('toRole') || undefined,
        sessionId: selected || undefined, limit: 100 } })),
    ]);
    if (list) {
      clear(sessions.tbody);
      for (const s of list.sessions || []) {
        sessions.tbody.append(h('tr', { class: s.sessionId === selected ? 'selected' : '' },
          h('td', {}, h('a', { href: route(['sessions'], { sessionId: s.sessionId }) }, s.sessionId)),
          h('td', {}, s.agentRole), h('td', {}, badge(s.status)), h('td', {}, s.taskId || '—'), h('td', {}, when(s.updatedAt))));
      }
      note.textContent = `${list.total} sessions; ${taskPage ? taskPage.items.length : 0} tasks shown.`;
    }
    if (taskPage) {
      clear(tasks.tbody);
      for (const t of taskPage.items) {
        const show = h('button', { type: 'button', class: 'link', 'aria-label': `Show task ${t.taskId}`, onclick: () => clear(detail).append(h('h2', {}, `Task ${t.taskId}`), json(t)) }, t.taskId);
        tasks.tbody.append(h('tr', {}, h('td', {}, show), h('td', {}, t.type), h('td', {}, `${t.fromRole || '—'} → ${t.toRole}`),
          h('td', {}, badge(t.status)), h('td', {}, t.approvalId ? h('a', { href: route(['approvals']) }, t.approvalId) : '—'), h('td', {}, when(t.updatedAt))));
      }
    }
  }
  const later = debounce(refresh, 300);
  for (const e of ['session:updated', 'task:updated', 'approval:decided']) life.on(e, later);
  refresh();
  return { refresh, unmount: life.end };
}
