// The waiting room in front of a phase's opening (API.md, "Waiting room"). The person
// queues once (`POST /v1/phases/{phase}/queue`: idempotent, the same person always gets
// the same ticket), then the page polls the ticket's standing (`GET`, header
// `Queue-Ticket`) after each `Retry-After`, exactly, until they are admitted or the phase
// is sold out; the booking then carries the ticket. A phase without a room answers
// `admitted` at once, with no position: nothing is shown for it. The ticket is kept with
// the booking token in sessionStorage, so a reload rejoins with it instead of queueing.
//
// One room at a time is watched: the one of the phase chosen on the booking page.

import { t, duration } from './i18n.js';
import * as api from './api.js';
import {
  $, h, formatClock, formatNumber, showProblem, clearProblem,
} from './ui.js';

/** Seconds before the next poll when a waiting answer carried no `Retry-After` (the API always sends one). */
const FALLBACK_POLL_S = 5;
/** Seconds before trying again when no answer came at all. */
const NETWORK_RETRY_S = 5;

const room = {
  phase: null, // the phase watched, or null
  standing: null, // its last QueueStanding
  problem: null, // a failed call being shown (its countdown retries)
  running: false, // polling (the booking page is on screen)
  pending: null, // the request in flight, a promise of its result
  seq: 0, // bumped by every stop and switch: an older answer is dropped
  pollTimer: null,
  tickTimer: null,
  nextAt: 0,
};

let hooks = { changed: () => {}, unauthenticated: () => {} };

/** `changed(phase)` after every new standing; `unauthenticated(result)` when the token is gone. */
export function configure(given) {
  hooks = { ...hooks, ...given };
}

const path = (phase) => `/v1/phases/${encodeURIComponent(phase)}/queue`;
const hasRoom = (s) => !(s.state === 'admitted' && s.position === null);

/** The standing of `phase`, if it is the room watched and one is known. */
export function standing(phase) {
  return room.phase === phase ? room.standing : null;
}

/** Whether booking in `phase` must wait: known to be waiting or sold out, or just refused. */
export function blocks(phase) {
  if (room.phase !== phase) return false;
  const s = room.standing;
  return Boolean((s && s.state !== 'admitted') || room.problem?.problem.code === 'not-admitted');
}

/** The `Queue-Ticket` header for a booking in `phase` (none when there is no ticket). */
export function ticketHeader(phase) {
  const ticket = api.ticket(phase);
  return ticket ? { 'Queue-Ticket': ticket } : {};
}

/**
 * Watches the room of `phase`: rejoins with the saved ticket or queues, then polls. Answers
 * a promise of the standing once known (null when the call failed).
 */
export function enter(phase) {
  if (room.phase === phase && room.running) {
    render();
    return room.pending ?? Promise.resolve(room.standing);
  }
  stop();
  if (room.phase !== phase) {
    room.phase = phase;
    room.standing = null;
  }
  room.running = true;
  render();
  return refresh();
}

/** Stops polling (the page is left); what is known stays for a return. */
export function stop() {
  room.seq += 1;
  room.running = false;
  room.pending = null;
  room.problem = null;
  clearTimers();
  clearProblem($('bk-queue-error'));
}

/** Stops watching any room and hides the panel (another phase without a room, a logout). */
export function leave() {
  stop();
  room.phase = null;
  room.standing = null;
  render();
}

/**
 * Before a booking in `phase`: the standing, queueing first when none is known yet. Null
 * when the waiting room could not be asked (the booking is tried; the server decides).
 */
export async function admit(phase) {
  if (room.phase === phase && room.standing?.state === 'admitted') return room.standing;
  return enter(phase);
}

/** A booking answered 403 `not-admitted`: back to the waiting room, polling after its `Retry-After`. */
export function notAdmitted(phase, result) {
  stop();
  room.phase = phase;
  room.running = true;
  room.standing = null; // not what the server thinks: the next poll says
  fail(result, room.seq);
  $('bk-queue-error').focus();
  hooks.changed(phase);
}

/** Moves focus to the waiting room (a booking was tried before the person's turn). */
export function focus() {
  const box = $('bk-queue-error');
  (box.hidden ? $('bk-queue-h') : box).focus();
}

function clearTimers() {
  clearTimeout(room.pollTimer);
  clearInterval(room.tickTimer);
  room.pollTimer = null;
  room.tickTimer = null;
}

/** Asks the standing now: `GET` with the saved ticket, else (or when it is refused) `POST`. */
function refresh() {
  const seq = room.seq;
  const { phase } = room;
  clearTimers();
  const work = (async () => {
    const saved = api.ticket(phase);
    let r;
    if (saved) {
      r = await api.call('GET', path(phase), { headers: { 'Queue-Ticket': saved } });
      // A ticket this room does not know (a calendar reloaded, another phase's): queue again.
      if (!r.ok && r.status === 422 && seq === room.seq) {
        api.dropTicket(phase);
        r = null;
      }
    }
    if (!r) r = await api.call('POST', path(phase), { auth: 'booking' });
    if (seq !== room.seq) return null;
    room.pending = null;
    if (r.ok) return settle(r, seq);
    fail(r, seq);
    return null;
  })();
  room.pending = work;
  renderNext();
  return work;
}

function settle(r, seq) {
  const s = r.data;
  room.standing = s;
  room.problem = null;
  clearProblem($('bk-queue-error'));
  // Only a room's ticket is kept: the one a phase without a room answers was never queued,
  // and should the phase get a room later, it would have to queue (POST) to be in it.
  if (s.ticket && hasRoom(s)) api.saveTicket(room.phase, s.ticket);
  else api.dropTicket(room.phase);
  if (s.state === 'waiting') {
    // Honour Retry-After exactly: the server spreads the crowd's polls with it.
    const seconds = r.retryAfter ?? FALLBACK_POLL_S;
    room.nextAt = Date.now() + seconds * 1000;
    room.pollTimer = setTimeout(() => { if (seq === room.seq) refresh(); }, seconds * 1000);
    room.tickTimer = setInterval(renderNext, 250);
  }
  render();
  hooks.changed(room.phase);
  return s;
}

/** A failed call: the message, and when it may be retried, a countdown that retries. */
function fail(r, seq) {
  room.pending = null;
  if (r.problem.code === 'unauthenticated') {
    leave();
    hooks.unauthenticated(r);
    return;
  }
  room.problem = r;
  render();
  const retryAfter = r.retryAfter ?? (r.status === 0 ? NETWORK_RETRY_S : null);
  showProblem($('bk-queue-error'), { ...r, retryAfter }, {
    then: retryAfter === null ? undefined : () => { if (seq === room.seq) refresh(); },
    focus: false,
  });
}

// --- The panel ----------------------------------------------------------------------------

/** Redraws the panel from what is known (also after a language switch). */
export function render() {
  const panel = $('bk-queue');
  const s = room.standing;
  const visible = Boolean(room.phase && (room.problem || (s && hasRoom(s))));
  const appearing = visible && panel.hidden;
  panel.hidden = !visible;
  if (!visible) {
    // Shown again later, the standing is announced again.
    delete $('bk-queue-msg').dataset.text;
    $('bk-queue-msg').textContent = '';
    return;
  }
  panel.dataset.state = s ? s.state : 'unknown';
  say(s ? message(s) : '', appearing);
  $('bk-queue-facts').replaceChildren(...(s ? facts(s) : []));
  renderNext();
}

function message(s) {
  if (s.state === 'admitted') return t('queue.turn');
  if (s.state === 'sold-out') return t('queue.soldOut');
  if (s.position === null) return t('queue.pre', { time: formatClock(s.opens_at) });
  return t('queue.waiting', { position: formatNumber(s.position), ahead: formatNumber(s.ahead ?? 0) });
}

function facts(s) {
  if (s.state === 'sold-out') return [];
  const rows = [];
  const row = (key, value) => rows.push(h('dt', { text: t(key) }), h('dd', { text: value }));
  row('queue.position', s.position === null
    ? t('queue.positionLater', { time: formatClock(s.opens_at) })
    : formatNumber(s.position));
  if (s.state === 'waiting') {
    if (s.ahead !== null) row('queue.ahead', formatNumber(s.ahead));
    let wait;
    if (s.estimated_wait_seconds === null) wait = t('queue.waitUnknown');
    else if (s.estimated_wait_seconds === 0) wait = t('queue.waitSoon');
    else wait = duration(s.estimated_wait_seconds);
    row('queue.wait', wait);
  }
  if (typeof s.seats_left === 'number') row('queue.seatsLeft', formatNumber(s.seats_left));
  return rows;
}

/**
 * Writes the live message when it changes (an unchanged one is not re-announced). A
 * region that appears with its text is not always read: then the text follows a moment later.
 */
function say(text, appearing) {
  const el = $('bk-queue-msg');
  if (el.dataset.text === text) return;
  el.dataset.text = text;
  if (!appearing) { el.textContent = text; return; }
  el.textContent = '';
  setTimeout(() => { if (el.dataset.text === text) el.textContent = text; }, 150);
}

/** The line under the panel: the countdown to the next poll, or that one is under way. */
function renderNext() {
  const line = $('bk-queue-next');
  let text = '';
  if (room.running && !room.problem) {
    if (room.pending) text = t('queue.updating');
    else if (room.pollTimer) {
      const left = Math.max(0, Math.ceil((room.nextAt - Date.now()) / 1000));
      text = t('queue.next', { time: duration(left) });
      line.dataset.seconds = String(left);
    }
  }
  line.hidden = !text;
  if (line.textContent !== text) line.textContent = text;
}
