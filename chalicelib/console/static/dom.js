// Building the page from API data: every string goes in as text (textContent / createTextNode),
// never as markup. There is no innerHTML with data anywhere in the console (docs/CONSOLE.md).

const ATTRS = new Set(['id', 'class', 'type', 'name', 'value', 'placeholder', 'title', 'role', 'for', 'min', 'max',
  'step', 'rows', 'cols', 'tabindex', 'colspan', 'scope', 'hidden', 'disabled', 'required', 'checked', 'selected',
  'autocomplete', 'spellcheck', 'maxlength', 'open', 'datetime', 'lang', 'rel', 'target']);

/** h('tag', {attrs, onclick: fn, href: '#/internal'}, child...) -> element. Children: nodes or text. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'href') {
      el.setAttribute('href', safeHref(value));
    } else if (key === 'text') {
      el.textContent = String(value);
    } else if (key.startsWith('aria-') || key.startsWith('data-') || ATTRS.has(key)) {
      el.setAttribute(key, value === true ? '' : String(value));
    } else {
      throw new Error(`attribute ${key} is not allowed`);
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Links the console makes go to its own views only: '#/...'. Anything else (javascript:, data:, http:) is dropped. */
export function safeHref(value) {
  const text = String(value);
  return /^#\/[A-Za-z0-9/_.~%?=&:+-]*$/.test(text) ? text : '#/';
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function route(path, params = {}) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') query.set(k, v);
  const qs = query.toString();
  return `#/${path.map(encodeURIComponent).join('/')}${qs ? `?${qs}` : ''}`;
}

/** A status shown with its colour AND its word (never colour alone). */
export function badge(status) {
  const word = String(status ?? 'unknown');
  const slug = word.toLowerCase().replace(/[^a-z_-]/g, '') || 'unknown';
  return h('span', { class: `badge badge-${slug}` }, word);
}

export function when(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h('span', {}, String(iso));
  return h('time', { datetime: d.toISOString(), title: d.toISOString() }, ago(d));
}

export function ago(date) {
  const s = Math.round((Date.now() - date.getTime()) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return date.toISOString().slice(0, 16).replace('T', ' ');
}

/** JSON of an API value, as text in a <pre>. */
export function json(value) {
  let text;
  try { text = JSON.stringify(value, null, 2); } catch { text = String(value); }
  return h('pre', { class: 'json' }, text ?? 'null');
}

export function field(label, control) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), control);
}

export function select(name, options, value, label) {
  const el = h('select', { name, 'aria-label': label || name });
  for (const option of options) {
    const [v, text] = Array.isArray(option) ? option : [option, option || 'any'];
    el.append(h('option', { value: v, selected: v === value }, text));
  }
  return el;
}

export function table(headers, caption) {
  const tbody = h('tbody');
  const el = h('table', {},
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {}, headers.map((text) => h('th', { scope: 'col' }, text)))),
    tbody);
  return { el, tbody };
}

export function progress(percent, message) {
  const value = typeof percent === 'number' ? Math.max(0, Math.min(100, percent)) : null;
  if (value === null) return h('span', { class: 'progress muted' }, 'no progress yet');
  const label = `${Math.round(value)}%`;
  const bar = h('progress', { max: '100', 'aria-label': `progress ${label}` });
  bar.value = value;
  return h('span', { class: 'progress' }, bar, h('span', { class: 'pct' }, label),
    message ? h('span', { class: 'pmsg' }, String(message)) : null);
}

/** A confirmation dialog (the native <dialog>: focus trapped, Esc cancels). Resolves true or false. */
export function confirmDialog(title, text, extra) {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  const slot = clear(document.getElementById('confirm-extra'));
  if (extra) slot.append(extra);
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.returnValue = 'cancel';
    dialog.showModal();
    (extra?.querySelector('input,textarea') || document.getElementById('confirm-ok')).focus();
  });
}

// Which view is on screen: an answer that arrives after its view was left reports nothing.
let generation = 0;
export function nextView() { generation += 1; return generation; }
export function viewToken() { return generation; }

export function notice(message, kind = 'error') {
  const el = document.getElementById('notice');
  if (!message) { el.hidden = true; el.textContent = ''; return; }
  el.textContent = message;
  el.className = `notice notice-${kind}`;
  el.hidden = false;
}

/** A link out of the console: http(s) only, no referrer, no opener; anything else is plain text. */
export function externalLink(url, text) {
  const value = String(url ?? '');
  if (!/^https?:\/\/[^\s]+$/i.test(value)) return h('span', {}, text ?? value);
  const a = h('a', { rel: 'noopener noreferrer', target: '_blank' }, text ?? value);
  a.href = value;
  return a;
}
