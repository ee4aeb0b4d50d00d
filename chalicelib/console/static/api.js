// REST calls: Authorization header from the session, JSON in and out, the contract's error shape.
// A 401 signs the page out at once; a 403 is a clear message. No error text ever contains the key.
import { session, signOut } from './auth.js';

let base = '';
export function setRestUrl(url) { base = url.replace(/\/$/, ''); }

export class ApiError extends Error {
  constructor(status, code, message, body) { super(message); this.status = status; this.code = code; this.body = body; }
}

const MESSAGES = {
  401: 'Your key or sign-in was refused (unknown, revoked, disabled or expired). Sign in again.',
};
const FORBIDDEN = 'Not allowed for this key (403 Forbidden)';

export async function api(path, { method = 'GET', query, body, raw } = {}) {
  const auth = session();
  if (!auth) throw new ApiError(401, 'UNAUTHORIZED', MESSAGES[401]);
  const url = new URL(base + path, location.href);
  for (const [k, v] of Object.entries(query || {})) if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
  const headers = { Authorization: auth.authorization() };
  const init = { method, headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer' };
  if (body !== undefined) {
    headers['Content-Type'] = raw ? 'text/plain' : 'application/json';
    init.body = raw ? body : JSON.stringify(body);
  }
  if (method === 'POST') headers['Idempotency-Key'] = crypto.randomUUID();
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw new ApiError(0, 'NETWORK', 'The control plane cannot be reached; retrying when the connection is back.');
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (response.ok) return data;
  const error = data && data.error ? data.error : {};
  if (response.status === 401 && session() === auth) {
    signOut(MESSAGES[401]);
  }
  const message = response.status === 403 ? `${FORBIDDEN}: ${error.message || 'an operator or admin key is needed'}`
    : MESSAGES[response.status] || `${error.code || response.status}: ${error.message || 'request failed'}`;
  throw new ApiError(response.status, error.code || String(response.status), message, data);
}

/** Every item of a paged list, up to `max`. */
export async function all(path, query = {}, max = 1000, key = 'items') {
  const items = [];
  let nextToken;
  do {
    const page = await api(path, { query: { ...query, nextToken, limit: Math.min(100, max - items.length) } });
    items.push(...(page[key] || []));
    nextToken = page.nextToken;
  } while (nextToken && items.length < max);
  return { items, more: Boolean(nextToken) };
}
