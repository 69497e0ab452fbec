// The HTTP client of the slotd API (same origin) and the person's session: tokens live in
// sessionStorage, so they end with the tab and never outlive a shared computer's session.

import { lang } from './i18n.js';

const KEYS = { booking: 'slotd.booking', registration: 'slotd.registration' };

/** The stored token of `scope` (`booking` or `registration`), unless it has expired. */
export function token(scope) {
  try {
    const saved = JSON.parse(sessionStorage.getItem(KEYS[scope]) || 'null');
    if (saved && Date.parse(saved.expires_at) > Date.now()) return saved.token;
  } catch {
    // Unreadable storage (private mode, corrupted value): as good as no token.
  }
  sessionStorage.removeItem(KEYS[scope]);
  return null;
}

/** Keeps a `SessionToken` answer for its scope (a new login starts without queue tickets). */
export function saveToken(scope, session) {
  sessionStorage.setItem(KEYS[scope], JSON.stringify({ token: session.token, expires_at: session.expires_at }));
}

// Waiting-room tickets (`POST /v1/phases/{phase}/queue`) are the person's, one a phase:
// they are kept inside the booking token's entry, so that they go with it (a logout, a
// login as someone else, an expiry) and a reload rejoins the queue with the same ticket.

function bookingEntry() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(KEYS.booking) || 'null');
    return saved && typeof saved.token === 'string' ? saved : null;
  } catch {
    return null;
  }
}

/** The saved queue ticket of `phase`, or null. */
export function ticket(phase) {
  if (!token('booking')) return null;
  const t = bookingEntry()?.tickets?.[phase];
  return typeof t === 'string' ? t : null;
}

/** Keeps the queue ticket of `phase` with the booking token (not without one). */
export function saveTicket(phase, value) {
  const saved = bookingEntry();
  if (!saved || saved.tickets?.[phase] === value) return;
  saved.tickets = { ...(saved.tickets || {}), [phase]: value };
  try {
    sessionStorage.setItem(KEYS.booking, JSON.stringify(saved));
  } catch {
    // Storage full or off: the ticket serves this page only; queueing again gives it back.
  }
}

export function dropTicket(phase) {
  const saved = bookingEntry();
  if (!saved?.tickets?.[phase]) return;
  delete saved.tickets[phase];
  sessionStorage.setItem(KEYS.booking, JSON.stringify(saved));
}

export function dropToken(scope) {
  sessionStorage.removeItem(KEYS[scope]);
}

/** Forgets every token and pending intent: the logout. */
export function clearSession() {
  sessionStorage.clear();
}

/** A random key for one intended write (a UUID v4; works outside secure contexts too). */
export function newKey() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * One API call. Never throws: answers `{ok, status, data}` on 2xx, else `{ok: false,
 * status, problem, retryAfter}` where `problem.code` is the API's code, or `network` when
 * no answer came. `retryAfter` is the seconds of a `Retry-After` header, or null (on 2xx
 * too: the waiting room's polls carry one). `headers` are extra request headers.
 */
export async function call(method, path, { body, auth, key, headers: extra } = {}) {
  const headers = { 'Accept-Language': lang(), Accept: 'application/json', ...extra };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (auth) {
    const tok = token(auth);
    if (!tok) return { ok: false, status: 401, problem: { code: 'unauthenticated', reason: 'missing' }, retryAfter: null };
    headers.Authorization = `Bearer ${tok}`;
  }
  if (key) headers['Idempotency-Key'] = key;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    return { ok: false, status: 0, problem: { code: 'network' }, retryAfter: null };
  }
  const retryAfter = parseRetryAfter(res.headers.get('Retry-After'));
  let data = null;
  if (res.status !== 204) {
    try {
      data = await res.json();
    } catch {
      data = null;
    }
  }
  if (res.ok) return { ok: true, status: res.status, data, retryAfter };
  const problem = data && typeof data.code === 'string' ? data : { code: res.status === 404 ? 'not-found' : 'internal' };
  if (problem.code === 'unauthenticated' && auth) dropToken(auth);
  return { ok: false, status: res.status, problem, retryAfter };
}

/** `Retry-After` as seconds: delta-seconds or an HTTP date. */
function parseRetryAfter(value) {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

/** A solved-by-the-person captcha as requests carry it. */
export function captchaAnswer(id, answer) {
  return { id, answer: answer.trim() };
}
