// Who the page acts as. One session at a time, kept in sessionStorage (gone with the tab).
// Sign-in methods are providers: {id, label, form(onCredential), restore(saved)}; a session has
// authorization() (the Authorization header) and socketToken() (the WebSocket's ?token=).
// People's OIDC sign-in is a later provider with the same shape (config.json's `oidc` says
// when the app offers it); nothing else in the console changes.
import { h, field } from './dom.js';

const STORAGE = 'console.session';
const listeners = new Set();
let current = null;

class ApiKeySession {
  constructor(apiKey) { this.method = 'apiKey'; this.secret = apiKey; }
  authorization() { return `Bearer ${this.secret}`; }
  socketToken() { return this.secret; }
  save() { return { method: this.method, apiKey: this.secret }; }
}

export const providers = {
  apiKey: {
    id: 'apiKey',
    label: 'API key (operator or admin)',
    restore: (saved) => (typeof saved.apiKey === 'string' && saved.apiKey ? new ApiKeySession(saved.apiKey) : null),
    form(onCredential) {
      const input = h('input', { type: 'password', name: 'apiKey', autocomplete: 'off', spellcheck: 'false',
        required: true });
      const form = h('form', { class: 'signin', 'aria-label': 'Sign in with an API key' },
        field('API key', input),
        h('button', { type: 'submit', class: 'primary' }, 'Sign in'));
      form.addEventListener('submit', (event) => {
        event.preventDefault();
        const key = input.value.trim();
        input.value = '';
        if (key) onCredential(new ApiKeySession(key));
      });
      return form;
    },
  },
  // oidc: { id: 'oidc', label: 'Single sign-on', form(...), restore(...) }  -- a later issue
};

export function session() {
  if (current) return current;
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORAGE) || 'null');
    current = saved && providers[saved.method] ? providers[saved.method].restore(saved) : null;
  } catch { current = null; }
  return current;
}

export function signIn(newSession) {
  current = newSession;
  sessionStorage.setItem(STORAGE, JSON.stringify(newSession.save()));
  for (const fn of listeners) fn(current, null);
}

/** Forget the credential at once; `reason` (never containing the key) is shown on the sign-in page. */
export function signOut(reason = null) {
  const had = current || session();
  current = null;
  sessionStorage.removeItem(STORAGE);
  if (had || reason) for (const fn of listeners) fn(null, reason);
}

export function onChange(fn) { listeners.add(fn); return () => listeners.delete(fn); }
