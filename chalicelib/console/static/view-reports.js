// Delivery reports: their Markdown rendered by marked, then sanitised by DOMPurify into a DOM fragment
// (never assigned as innerHTML). No images or forms survive (the CSP would refuse outside images anyway);
// links are http(s) or in-page only and open with no referrer.
import { h, clear, when, route, table, notice, json } from './dom.js';
import { api } from './api.js';
import { lifecycle, debounce, guarded, heading } from './kit.js';
import { Marked } from './vendor/marked-18.3.0.esm.js';

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
// Raw HTML inside the Markdown is shown as the text it is (a report has no reason to carry markup);
// DOMPurify then cleans what Markdown itself produced (links, emphasis, tables).
const markdownParser = new Marked({ gfm: true, async: false, renderer: { html: (token) => escapeHtml(token.text ?? token.raw ?? '') } });

const SANITIZE = {
  RETURN_DOM_FRAGMENT: true,
  FORBID_TAGS: ['img', 'style', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'object', 'embed', 'svg', 'math', 'video', 'audio', 'source', 'picture', 'link', 'meta', 'base'],
  FORBID_ATTR: ['style', 'srcset', 'action', 'formaction'],
  ALLOWED_URI_REGEXP: /^(?:https?:|#)/i,
};

let hooked = false;
export function renderMarkdown(markdown) {
  const purify = window.DOMPurify;
  if (!purify) return h('pre', {}, String(markdown ?? ''));   // no sanitiser: show the source as text
  if (!hooked) {
    purify.addHook('afterSanitizeAttributes', (node) => {
      if (node.tagName === 'A') { node.setAttribute('rel', 'noopener noreferrer'); node.setAttribute('target', '_blank'); }
    });
    hooked = true;
  }
  const html = markdownParser.parse(String(markdown ?? ''));
  return purify.sanitize(html, SANITIZE);
}

export function mount(main, { query, navigate }) {
  const life = lifecycle();
  const note = h('p', { class: 'muted', 'aria-live': 'polite' });
  const { el, tbody } = table(['Order', 'Generated', 'Summary'], 'Delivery reports');
  const body = h('article', { class: 'report markdown', 'aria-label': 'Report' });
  const generate = h('button', { type: 'button', onclick: async () => {
    try { await api('/api/delivery/reports/generate', { method: 'POST', body: {} }); notice('Reports generated.', 'ok'); refresh(); } catch (e) { notice(e.message); }
  } }, 'Generate reports now');
  main.append(heading('Delivery reports', generate), note, h('div', { class: 'two' }, h('section', {}, el), h('section', {}, body)));

  async function show(orderId) {
    if (!orderId) { clear(body).append(h('p', { class: 'muted' }, 'Choose a report.')); return; }
    const report = await guarded(api('/api/delivery/reports', { query: { orderId } }), body);
    if (!report) return;
    clear(body).append(h('h2', {}, `Order ${report.orderId}`), h('p', { class: 'muted' }, 'Generated ', when(report.generatedAt)),
      renderMarkdown(report.markdown), h('details', {}, h('summary', {}, 'Summary data'), json(report.summary)));
  }
  async function refresh() {
    const page = await guarded(api('/api/delivery/reports', { query: { limit: 50 } }), note);
    if (page) {
      clear(tbody);
      for (const r of page.items || []) {
        tbody.append(h('tr', {}, h('td', {}, h('a', { href: route(['reports'], { orderId: r.orderId }) }, r.orderId)),
          h('td', {}, when(r.generatedAt)), h('td', {}, Object.entries(r.summary || {}).slice(0, 4).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' · '))));
      }
      note.textContent = `${(page.items || []).length} reports.`;
    }
    await show(query.get('orderId'));
  }
  life.on('report:generated', debounce(refresh, 300));
  refresh();
  return { refresh, unmount: life.end };
}

