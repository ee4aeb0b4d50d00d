// The console's entry: read config.json, sign in, then hash routing over the views.
// Deep links (#/jobs?status=RUNNING, #/jobs/<jobId>) survive a reload: the view is a function of the URL.
import { h, clear, notice, nextView } from './dom.js';
import { setRestUrl } from './api.js';
import * as auth from './auth.js';
import * as live from './live.js';
import * as fleet from './view-fleet.js';
import * as jobs from './view-jobs.js';
import * as job from './view-job.js';
import * as sessions from './view-sessions.js';
import * as approvals from './view-approvals.js';
import * as patches from './view-patches.js';
import * as reports from './view-reports.js';
import * as ops from './view-ops.js';
import * as commands from './view-commands.js';
import * as audit from './view-audit.js';

const VIEWS = { fleet, jobs, sessions, approvals, patches, reports, ops, commands, audit };
const main = document.getElementById('main');
const nav = document.getElementById('nav');
const signOutButton = document.getElementById('signout');
const conn = document.getElementById('conn');
const STATE_TEXT = { offline: 'Offline', connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…',
  unavailable: 'Live updates unavailable' };
let mounted = null;
let config = null;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, qs = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map((p) => { try { return decodeURIComponent(p); } catch { return p; } });
  return { parts, query: new URLSearchParams(qs) };
}

function unmount() {
  if (mounted) { try { mounted.unmount?.(); } catch { /* a view failing to clean up must not block the next */ } }
  mounted = null;
}

function render() {
  unmount();
  nextView();
  notice(null);
  clear(main);
  if (!auth.session()) { renderSignIn(); return; }
  const { parts, query } = parseHash();
  let [name = 'jobs', id] = parts;
  if (!VIEWS[name]) name = 'jobs';
  for (const a of nav.querySelectorAll('a')) {
    if (a.getAttribute('href') === `#/${name}`) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const view = name === 'jobs' && id ? job : VIEWS[name];
  document.title = `${name[0].toUpperCase()}${name.slice(1)} · Control plane console`;
  mounted = view.mount(main, { id, query, navigate });
}

/** Change the URL (and so the view) from a view: filters write themselves into the hash. */
function navigate(hash, { replace = false } = {}) {
  if (location.hash === hash) return;
  if (replace) { history.replaceState(null, '', hash); render(); } else location.hash = hash;
}

const PROVIDER_HELP = {
  oidc: 'Your email and password (people invited into an organization). The tokens are kept in this tab only.',
  apiKey: 'An operator or admin API key. It is kept in this tab only (sessionStorage) and sent as an Authorization header.',
};

function renderSignIn(reason) {
  nav.hidden = true;
  signOutButton.hidden = true;
  const message = reason ? h('p', { class: 'notice notice-error', role: 'alert' }, reason) : null;
  const methods = auth.available().map((provider) => h('section', { class: 'signin-method',
    'aria-labelledby': `signin-${provider.id}` },
  h('h2', { id: `signin-${provider.id}` }, provider.label),
  h('p', {}, PROVIDER_HELP[provider.id] || ''),
  provider.form((candidate) => auth.signIn(candidate))));
  main.append(h('section', { class: 'signin-page', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in'), message, methods));
  main.querySelector('input')?.focus();
}

function signedIn() {
  nav.hidden = false;
  signOutButton.hidden = false;
  live.start();
  render();
}

auth.onChange((session, reason) => {
  if (session) { signedIn(); return; }
  live.stop();
  unmount();
  nextView();
  clear(main);
  // The URL keeps only the view; never a credential.
  renderSignIn(reason);
  if (reason) main.querySelector('input')?.focus();
});

signOutButton.addEventListener('click', () => auth.signOut(null));
live.onState((state) => {
  conn.textContent = STATE_TEXT[state] || state;
  conn.className = `conn conn-${state}`;
  conn.dataset.state = state;
});
live.onReconnect(() => mounted?.refresh?.());
auth.onRefresh(() => live.renew());   // a person's new token: reopen the socket with it before the old one expires
window.addEventListener('hashchange', render);

async function boot() {
  try {
    const response = await fetch(new URL('config.json', import.meta.url), { cache: 'no-store' });
    config = await response.json();
  } catch {
    clear(main).append(h('p', { role: 'alert' }, 'The console could not read its configuration.'));
    return;
  }
  setRestUrl(config.restUrl);
  live.setWsUrl(config.wsUrl);
  auth.configure(config.oidc);
  clear(main);
  // A kept key is checked by the view's first read: a revoked one answers 401 and signs out there.
  if (auth.session()) signedIn(); else renderSignIn();
}

boot();
