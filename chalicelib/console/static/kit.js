// What every view shares: subscriptions that end with the view, debounced re-reads, filter forms.
import { h, notice, viewToken } from './dom.js';
import * as live from './live.js';

export function lifecycle() {
  const subs = [];
  return {
    on(event, fn) { subs.push(live.on(event, fn)); },
    every(ms, fn) { const t = setInterval(fn, ms); subs.push(() => clearInterval(t)); },
    add(fn) { subs.push(fn); },
    end() { while (subs.length) subs.pop()(); },
  };
}

export function debounce(fn, ms = 300) {
  let timer = null;
  const wrapped = () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

/** Run a REST read and report its failure in the view (401 has already signed out). */
export async function guarded(promise, where) {
  const token = viewToken();
  try { return await promise; } catch (error) {
    if (token !== viewToken()) return null;   // the view was left meanwhile
    if (error.status !== 401) {
      notice(error.message || 'request failed');
      if (where) where.textContent = error.message || 'request failed';
    }
    return null;
  }
}

/** A filter form whose fields come from and go to the URL's query (deep links). */
export function filterForm(label, fields, query, onApply) {
  const controls = {};
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': label });
  for (const f of fields) {
    let control;
    if (f.options) {
      control = h('select', { name: f.name });
      for (const option of f.options) {
        const [value, text] = Array.isArray(option) ? option : [option, option || 'any'];
        control.append(h('option', { value, selected: (query.get(f.name) || '').toLowerCase() === String(value).toLowerCase() }, text));
      }
    } else {
      control = h('input', { name: f.name, type: 'search', placeholder: f.placeholder || '', autocomplete: 'off' });
      control.value = query.get(f.name) || '';
    }
    controls[f.name] = control;
    form.append(h('label', {}, h('span', {}, f.label), control));
  }
  form.append(h('button', { type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const values = {};
    for (const [name, control] of Object.entries(controls)) values[name] = control.value.trim();
    onApply(values);
  });
  return { form, controls };
}

export function heading(text, ...extra) {
  return h('div', { class: 'view-head' }, h('h1', {}, text), ...extra);
}

export function parseJson(text, fieldName) {
  if (!text.trim()) return {};
  try { return JSON.parse(text); } catch { throw new Error(`${fieldName} is not valid JSON`); }
}
