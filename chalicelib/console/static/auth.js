// Who the page acts as. One session at a time, kept in sessionStorage (gone with the tab).
// Sign-in methods are providers: {id, label, form(onCredential), restore(saved)}; a session has
// authorization() (the Authorization header) and socketToken() (the WebSocket's ?token=).
//
// Two providers: a person (email and password against the Cognito user pool config.json names as
// `oidc`, with the same InitiateAuth call on AWS and on the local stack) and an API key. A person's
// session refreshes its tokens (REFRESH_TOKEN_AUTH) a minute before they expire and tells its
// listeners (the live socket reopens with the new token); a refresh Cognito refuses (the person was
// disabled or signed out everywhere) signs the page out. Signing out ends the person's sessions at
// Cognito too (GlobalSignOut), best effort.
import { h, field } from './dom.js';

const STORAGE = 'console.session';
const REFRESH_BEFORE_MS = 60_000;   // refresh this long before the access token expires
const RETRY_MS = 10_000;            // a refresh that met the network is tried again after this
const listeners = new Set();
const refreshListeners = new Set();
let current = null;
let oidc = null;                    // config.json's `oidc`: {issuer, clientId, region, endpoint} or null

/** config.json's `oidc` (null: the app takes API keys only). Call before session(). */
export function configure(oidcConfig) { oidc = oidcConfig || null; }

export class CognitoError extends Error {
  constructor(type, message) { super(message); this.type = type; }
}

/** One call of Cognito's public API (no AWS credentials: the app client is public). */
async function cognito(action, body) {
  if (!oidc) throw new CognitoError('NotConfigured', 'people cannot sign in here');
  let response;
  try {
    response = await fetch(oidc.endpoint, {
      method: 'POST', cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer',
      headers: { 'Content-Type': 'application/x-amz-json-1.1',
        'X-Amz-Target': `AWSCognitoIdentityProviderService.${action}` },
      body: JSON.stringify(body),
    });
  } catch {
    throw new CognitoError('Network', 'The sign-in service cannot be reached.');
  }
  let data = {};
  try { data = await response.json(); } catch { data = {}; }
  if (response.ok) return data;
  const type = String(data.__type || response.headers.get('x-amzn-errortype') || 'Error').split('#').pop().split(':')[0];
  throw new CognitoError(type, String(data.message || 'sign-in failed'));
}

class ApiKeySession {
  constructor(apiKey) { this.method = 'apiKey'; this.secret = apiKey; }
  authorization() { return `Bearer ${this.secret}`; }
  socketToken() { return this.secret; }
  save() { return { method: this.method, apiKey: this.secret }; }
  start() {}
  stop() {}
  end() {}
}

class PersonSession {
  constructor({ email, accessToken, refreshToken, expiresAt }) {
    this.method = 'oidc';
    this.email = email;
    this.accessToken = accessToken;
    this.refreshToken = refreshToken;
    this.expiresAt = expiresAt;   // epoch ms
    this.timer = null;
  }

  static fromResult(email, result, refreshToken) {
    return new PersonSession({ email, accessToken: result.AccessToken, refreshToken: result.RefreshToken || refreshToken,
      expiresAt: Date.now() + Number(result.ExpiresIn || 3600) * 1000 });
  }

  authorization() { return `Bearer ${this.accessToken}`; }
  socketToken() { return this.accessToken; }
  save() {
    return { method: this.method, email: this.email, accessToken: this.accessToken, refreshToken: this.refreshToken,
      expiresAt: this.expiresAt };
  }

  start() {
    this.stop();
    const due = Math.max(0, this.expiresAt - REFRESH_BEFORE_MS - Date.now());
    this.timer = setTimeout(() => this.refresh(), due);
  }

  stop() { clearTimeout(this.timer); this.timer = null; }

  async refresh() {
    if (current !== this) return;
    try {
      const answer = await cognito('InitiateAuth', { AuthFlow: 'REFRESH_TOKEN_AUTH', ClientId: oidc.clientId,
        AuthParameters: { REFRESH_TOKEN: this.refreshToken } });
      if (current !== this) return;
      const result = answer.AuthenticationResult || {};
      this.accessToken = result.AccessToken;
      this.expiresAt = Date.now() + Number(result.ExpiresIn || 3600) * 1000;
      sessionStorage.setItem(STORAGE, JSON.stringify(this.save()));
      this.start();
      for (const fn of refreshListeners) { try { fn(this); } catch { /* a listener's failure is its own */ } }
    } catch (error) {
      if (current !== this) return;
      if (error.type === 'Network' && Date.now() < this.expiresAt) {
        this.timer = setTimeout(() => this.refresh(), RETRY_MS);
        return;
      }
      signOut('Your sign-in ended (the session was refused: disabled, signed out or expired). Sign in again.');
    }
  }

  /** Signing out: Cognito forgets this person's refresh tokens (best effort: the page forgets them anyway). */
  end() {
    this.stop();
    cognito('GlobalSignOut', { AccessToken: this.accessToken }).catch(() => {});
  }
}

function personForm(onCredential) {
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', spellcheck: 'false', required: true });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const newPassword = h('input', { type: 'password', name: 'newPassword', autocomplete: 'new-password' });
  const newField = field('Choose a new password', newPassword);
  newField.hidden = true;
  const status = h('p', { class: 'signin-status', role: 'status', 'aria-live': 'polite' });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in with email');
  const form = h('form', { class: 'signin', 'aria-label': 'Sign in with email and password' },
    field('Email', email), field('Password', password), newField, status, button);
  let challenge = null;   // Cognito's NEW_PASSWORD_REQUIRED: an invited person's first sign-in
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    button.disabled = true;
    status.textContent = 'Signing in…';
    const who = email.value.trim();
    try {
      let answer;
      if (challenge) {
        answer = await cognito('RespondToAuthChallenge', { ChallengeName: 'NEW_PASSWORD_REQUIRED', ClientId: oidc.clientId,
          Session: challenge, ChallengeResponses: { USERNAME: who, NEW_PASSWORD: newPassword.value } });
      } else {
        answer = await cognito('InitiateAuth', { AuthFlow: 'USER_PASSWORD_AUTH', ClientId: oidc.clientId,
          AuthParameters: { USERNAME: who, PASSWORD: password.value } });
      }
      if (answer.ChallengeName === 'NEW_PASSWORD_REQUIRED') {
        challenge = answer.Session;
        newField.hidden = false;
        newPassword.required = true;
        newPassword.focus();
        status.textContent = 'This is your first sign-in: choose a new password.';
        return;
      }
      if (!answer.AuthenticationResult) throw new CognitoError('Unsupported', `unsupported step ${answer.ChallengeName || ''}`);
      password.value = '';
      newPassword.value = '';
      status.textContent = '';
      onCredential(PersonSession.fromResult(who, answer.AuthenticationResult));
    } catch (error) {
      // Cognito's message as text (never markup); it never contains the password.
      status.textContent = error.type === 'NotAuthorizedException' || error.type === 'UserNotFoundException'
        ? 'Incorrect email or password, or this person is disabled.' : `Sign-in failed: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

export const providers = {
  oidc: {
    id: 'oidc',
    label: 'Email and password',
    available: () => Boolean(oidc),
    restore: (saved) => (oidc && typeof saved.accessToken === 'string' && typeof saved.refreshToken === 'string'
      ? new PersonSession(saved) : null),
    form: personForm,
  },
  apiKey: {
    id: 'apiKey',
    label: 'API key (operator or admin)',
    available: () => true,
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
};

/** The providers this deployment offers, people first. */
export function available() { return Object.values(providers).filter((p) => p.available()); }

export function session() {
  if (current) return current;
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORAGE) || 'null');
    current = saved && providers[saved.method] ? providers[saved.method].restore(saved) : null;
  } catch { current = null; }
  current?.start();
  return current;
}

export function signIn(newSession) {
  current?.stop();
  current = newSession;
  sessionStorage.setItem(STORAGE, JSON.stringify(newSession.save()));
  current.start();
  for (const fn of listeners) fn(current, null);
}

/** Forget the credential at once; `reason` (never containing the key) is shown on the sign-in page. */
export function signOut(reason = null) {
  const had = current || session();
  current = null;
  sessionStorage.removeItem(STORAGE);
  if (had) { if (reason) had.stop(); else had.end(); }
  if (had || reason) for (const fn of listeners) fn(null, reason);
}

export function onChange(fn) { listeners.add(fn); return () => listeners.delete(fn); }

/** A person's tokens were refreshed: what holds the old token (the live socket) should reopen with the new one. */
export function onRefresh(fn) { refreshListeners.add(fn); return () => refreshListeners.delete(fn); }
