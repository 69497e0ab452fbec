// Small DOM helpers shared by the views: translation of marked elements, dates, field
// validation, problem messages with their Retry-After countdown, the confirm dialog and the
// captcha widget. No framework: the page's HTML is the template.

import { t, lang, problemText, duration } from './i18n.js';
import { call } from './api.js';

export const $ = (id) => document.getElementById(id);

/** Creates an element with properties and children (strings become text). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/** Sets an element's text to the string `key` and remembers it for language switches. */
export function setText(el, key, vars) {
  el.dataset.i18n = key;
  if (vars) el.dataset.i18nVars = JSON.stringify(vars);
  else delete el.dataset.i18nVars;
  el.textContent = t(key, vars);
}

/**
 * Translates every marked element under `root`: `data-i18n` (text, with `data-i18n-vars`),
 * `data-i18n-attr` (`attr=key`, space-separated) and `data-problem` (a problem message).
 */
export function translate(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n, el.dataset.i18nVars ? JSON.parse(el.dataset.i18nVars) : undefined);
  }
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(' ')) {
      const [attr, key] = pair.split('=');
      el.setAttribute(attr, t(key));
    }
  }
  for (const el of root.querySelectorAll('[data-problem]')) el.textContent = problemText(el.dataset.problem);
}

/** Intl locale of a language: Thai gets the Buddhist calendar its readers expect. */
const locale = () => lang();

/** `YYYY-MM-DD` (a Taiwan date) as a weekday and date in the current language. */
export function formatDay(ymd) {
  const [y, m, d] = ymd.split('-').map(Number);
  return new Intl.DateTimeFormat(locale(), {
    weekday: 'short', month: 'long', day: 'numeric', timeZone: 'UTC',
  }).format(new Date(Date.UTC(y, m - 1, d)));
}

/** An RFC 3339 time as a date and minute, on Taiwan's clock. */
export function formatTime(iso) {
  return new Intl.DateTimeFormat(locale(), {
    dateStyle: 'medium', timeStyle: 'short', hourCycle: 'h23', timeZone: 'Asia/Taipei',
  }).format(new Date(iso));
}

/** An RFC 3339 time as hours and minutes on Taiwan's clock; with the date when not today. */
export function formatClock(iso) {
  const at = new Date(iso);
  const day = (d) => new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Taipei' }).format(d);
  if (day(at) !== day(new Date())) return formatTime(iso);
  return new Intl.DateTimeFormat(locale(), {
    hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: 'Asia/Taipei',
  }).format(at);
}

/** A count, grouped as the language writes it (48,213). */
export function formatNumber(n) {
  return new Intl.NumberFormat(locale()).format(n);
}

/** A `<time>` element showing `iso` formatted by `format`. */
export function timeEl(iso, format = formatTime) {
  return h('time', { datetime: iso, text: format(iso) });
}

// --- Status line -----------------------------------------------------------------------

let statusTimer;
/**
 * Announces a short success message in the polite live region, cleared after a while. The
 * region stays rendered while empty: one that appears with its text is not always read.
 */
export function announce(key, vars) {
  const el = $('status');
  clearTimeout(statusTimer);
  setText(el, key, vars);
  statusTimer = setTimeout(() => { el.textContent = ''; delete el.dataset.i18n; }, 10000);
}

// --- Field validation --------------------------------------------------------------------

const RULES = {
  required: (v) => v.length > 0,
  idNumber: (v) => /^[A-Za-z][1289A-Da-d][0-9]{8}$/.test(v),
  nhiCard: (v) => /^[0-9]{12}$/.test(v),
  otp: (v) => /^[0-9]{6}$/.test(v),
  mobile: (v) => /^09[0-9]{8}$/.test(v),
  name: (v) => v.length >= 1 && [...v].length <= 50,
  captcha: (v) => v.length > 0,
};

function errorOf(input) {
  return $(`${input.id}-err`);
}

/** Marks `input` invalid with the message `key`, or valid when `key` is null. */
export function fieldError(input, key) {
  const err = errorOf(input);
  if (key) {
    input.setAttribute('aria-invalid', 'true');
    if (err) { setText(err, key); err.hidden = false; }
  } else {
    input.removeAttribute('aria-invalid');
    if (err) { err.hidden = true; err.textContent = ''; delete err.dataset.i18n; }
  }
}

/**
 * Checks the visible `[data-rule]` fields of `form`; marks each failure and focuses the
 * first. Returns whether all passed.
 */
export function validate(form) {
  let first = null;
  for (const input of form.querySelectorAll('[data-rule]')) {
    if (input.closest('[hidden]')) { fieldError(input, null); continue; }
    const value = input.value.trim();
    const rule = input.dataset.rule;
    let key = null;
    if (!value) key = 'invalid.required';
    else if (!RULES[rule](value)) key = `invalid.${rule}`;
    fieldError(input, key);
    if (key && !first) first = input;
  }
  if (first) first.focus();
  return !first;
}

// --- Problems and the Retry-After countdown -------------------------------------------------

const countdowns = new WeakMap();

/** Clears an error box and stops its countdown, re-enabling what it held. */
export function clearProblem(box) {
  const running = countdowns.get(box);
  if (running) running.stop(false);
  box.hidden = true;
  box.replaceChildren();
}

/**
 * Shows the failed call `result` in `box`: the human message of its problem code, and when
 * it carries `Retry-After`, a countdown during which `hold` (buttons) stay disabled. When
 * the countdown ends the buttons come back and `then` (a retry of a read) runs, if given.
 * `extra` nodes (links) follow the message. Focus moves to the box.
 */
export function showProblem(box, result, { hold = [], then, extra = [], focus = true } = {}) {
  clearProblem(box);
  const message = h('p', { 'data-problem': result.problem.code, text: problemText(result.problem.code) });
  box.append(message, ...extra);
  box.hidden = false;
  if (result.retryAfter !== null && result.retryAfter !== undefined && result.retryAfter >= 0) {
    startCountdown(box, result.retryAfter, hold, then);
  }
  if (focus) box.focus();
}

function startCountdown(box, seconds, hold, then) {
  // The ticking number is not announced every second (aria-live off inside the alert box):
  // it is read with the message when focus lands on the box, and the end is announced.
  const line = h('p', { class: 'countdown', 'aria-live': 'off' });
  box.append(line);
  const end = Date.now() + seconds * 1000;
  const buttons = hold.filter(Boolean);
  for (const b of buttons) { b.disabled = true; b.dataset.held = '1'; }
  let shown = -1;
  const render = () => {
    const left = Math.max(0, Math.ceil((end - Date.now()) / 1000));
    if (left !== shown) {
      shown = left;
      line.textContent = t(then ? 'retry.auto' : 'retry.in', { time: duration(left) });
      line.dataset.seconds = String(left);
    }
    return left;
  };
  render();
  const timer = setInterval(() => { if (render() === 0) stop(true); }, 250);
  function stop(finished) {
    clearInterval(timer);
    countdowns.delete(box);
    for (const b of buttons) { delete b.dataset.held; b.disabled = false; }
    if (!finished) return;
    if (then) {
      // The retry speaks for itself: a new problem if it fails again, else its result.
      box.hidden = true;
      box.replaceChildren();
      then();
      return;
    }
    setText(line, 'retry.now');
    line.classList.add('ready');
    announce('retry.now');
  }
  // A language switch shows the new language at once, not at the next second.
  countdowns.set(box, { stop, render: () => { shown = -1; render(); } });
}

/** Re-renders running countdowns after a language switch. */
export function retranslateCountdowns(boxes) {
  for (const box of boxes) countdowns.get(box)?.render();
}

// --- Busy buttons ----------------------------------------------------------------------------

/** Disables `button` while `work` runs (a double click sends one request). */
export async function busy(button, work) {
  if (button.disabled) return undefined;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } finally {
    button.removeAttribute('aria-busy');
    // A countdown started by `work` keeps holding the button.
    if (!button.dataset.held) button.disabled = false;
  }
}

// --- Confirm dialog --------------------------------------------------------------------------

/** Asks a yes/no question in the modal dialog; resolves true for yes. */
export function confirmDialog(text) {
  const dialog = $('confirm');
  $('confirm-text').textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'yes'), { once: true });
    dialog.returnValue = 'no';
    dialog.showModal();
    $('confirm-no').focus();
  });
}

// --- Captcha --------------------------------------------------------------------------------

/**
 * The captcha of one form: the picture, its refresh button and the answer field. A
 * challenge is single-use, so the form calls `load()` again after every attempt.
 */
export class Captcha {
  constructor(fieldset, errorBox) {
    this.img = fieldset.querySelector('img');
    this.input = fieldset.querySelector('input');
    this.button = fieldset.querySelector('.captcha-refresh');
    this.errorBox = errorBox;
    this.id = null;
    this.timer = null;
    this.button.addEventListener('click', () => busy(this.button, () => this.load(true)));
  }

  /** Fetches a new challenge; `announce` tells screen readers the picture changed. */
  async load(announceIt = false) {
    clearTimeout(this.timer);
    this.id = null;
    this.input.value = '';
    const r = await call('GET', '/v1/captcha');
    if (!r.ok) {
      showProblem(this.errorBox, r, { hold: [this.button], then: () => this.load(), focus: announceIt });
      return;
    }
    this.id = r.data.captcha;
    this.img.src = r.data.image;
    // Renew shortly before it expires (bounded against a wrong client clock).
    const ttl = Date.parse(r.data.expires_at) - Date.now() - 5000;
    this.timer = setTimeout(() => this.load(), Math.min(Math.max(ttl, 30000), 600000));
    if (announceIt) { announce('captcha.renewed'); this.input.focus(); }
  }

  /** Stops renewing (the form is gone from view). */
  stop() {
    clearTimeout(this.timer);
  }

  answer() {
    return { id: this.id || '', answer: this.input.value.trim() };
  }
}
