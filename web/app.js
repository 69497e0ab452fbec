// The citizen's journey as a single page: intent registration, login, availability, the
// waiting room of a phase that has one (queue.js), booking, my bookings with the check-in QR
// code, change and cancel. Hash routes (`#/book?phase=01`) pick a view; each view is a
// <section> of index.html that `enter` fills in and `render` redraws from the state already
// fetched (a language switch re-renders without refetching).

import { DEFAULT_LANG, setLang, lang, t } from './i18n.js';
import * as api from './api.js';
import * as queue from './queue.js';
import {
  $, h, setText, translate, formatDay, formatTime, timeEl, announce, fieldError, validate,
  showProblem, clearProblem, retranslateCountdowns, busy, confirmDialog, Captcha,
} from './ui.js';

/** What the views have fetched; nothing here outlives the tab except via sessionStorage. */
const state = {
  phases: null, // GET /v1/phases .phases
  phasesAt: 0, // when they were fetched (Date.now())
  geo: null, // GET /v1/geography, counties sorted by postal code
  registration: null, // the live registration, or null
  bookings: null, // GET /v1/me/bookings .bookings
  availability: null, // the last availability page shown
  search: null, // {phase, county, district, date} of that page
  changing: null, // the booking whose slot is being changed
  flash: null, // {box, result}: a problem to show on the next view
};

const VACCINES = ['AZ', 'Moderna'];

// --- Routing ---------------------------------------------------------------------------------

const VIEWS = {
  '': { section: 'view-home', title: 'home.h', nav: 'home' },
  register: { section: 'view-reg-identify', title: 'reg.identify.h', nav: 'register', enter: enterRegister },
  'register/form': { section: 'view-reg-form', title: 'reg.form.h', nav: 'register', enter: enterRegForm },
  'register/done': {
    section: 'view-reg-done', title: 'reg.done.h', nav: 'register', enter: enterRegDone, render: renderRegDone,
  },
  login: { section: 'view-login', title: 'login.h', nav: 'login', enter: enterLogin },
  book: { section: 'view-book', title: 'book.h', nav: 'book', enter: enterBook, render: () => renderBook(formChoice()) },
  me: { section: 'view-me', title: 'me.h', nav: 'me', enter: enterMe, render: renderMe },
};

let current = null; // {path, params, view}
let routing = 0; // the latest navigation: an older one's late answers are dropped

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?');
  return { path: path.replace(/\/$/, ''), params: new URLSearchParams(query) };
}

/** Navigates to `#/path`; `replace` keeps the back button from returning to a guard. */
function go(path, replace = false) {
  const hash = `#/${path}`;
  if (location.hash === hash) { route(); return; }
  if (replace) { history.replaceState(null, '', hash); route(); } else location.hash = hash;
}

async function route(initial = false) {
  const { path, params } = parseHash();
  const view = Object.hasOwn(VIEWS, path) ? VIEWS[path] : VIEWS[''];
  const seq = ++routing;
  for (const c of captchas.values()) c.stop();
  queue.stop();
  for (const section of document.querySelectorAll('.view')) section.hidden = section.id !== view.section;
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === view.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  current = { path, params, view, seq };
  updateSessionUi();
  document.title = `${t(view.title)} · ${t('app.title')}`;
  const section = $(view.section);
  for (const box of section.querySelectorAll('.alert')) clearProblem(box);
  if (state.flash && section.contains(state.flash.box)) {
    showProblem(state.flash.box, state.flash.result, { focus: false });
    state.flash = null;
  }
  if (view.enter) await view.enter(params, seq);
  if (seq !== routing) return;
  // Focus follows the page change so screen readers and keyboards start at its heading;
  // a view that already moved focus (to an error or a result) keeps it.
  if (!initial && !section.contains(document.activeElement)) section.querySelector('h1').focus();
}

const stale = (seq) => seq !== routing;

function updateSessionUi() {
  const booking = Boolean(api.token('booking'));
  $('logout').hidden = !booking && !api.token('registration');
  $('nav-login').parentElement.hidden = booking;
}

/** Sends the person to the login, then back to `next`, showing why. */
function needLogin(next, result) {
  if (result) state.flash = { box: $('li-error'), result };
  go(`login?next=${encodeURIComponent(next)}`, true);
}

// --- Captchas --------------------------------------------------------------------------------

const captchas = new Map();
function captchaOf(name) {
  if (!captchas.has(name)) {
    captchas.set(name, new Captcha(document.querySelector(`[data-captcha="${name}"]`), $(`${name}-error`)));
  }
  return captchas.get(name);
}

// --- Intent registration -----------------------------------------------------------------

async function enterRegister(params, seq) {
  if (api.token('registration')) {
    await loadRegistrationAndShow(seq);
    return;
  }
  captchaOf('ri').load();
}

/** With a registration token: the live registration's page, or the empty form. */
async function loadRegistrationAndShow(seq) {
  const r = await api.call('GET', '/v1/me/registration', { auth: 'registration' });
  if (stale(seq)) return;
  if (r.ok) {
    state.registration = r.data;
    go('register/done', true);
  } else if (r.problem.code === 'not-registered') {
    state.registration = null;
    go('register/form', true);
  } else if (r.problem.code === 'unauthenticated') {
    captchaOf('ri').load();
    showProblem($('ri-error'), r);
  } else {
    captchaOf('ri').load();
    showProblem($('ri-error'), r, { then: () => loadRegistrationAndShow(seq) });
  }
}

$('ri-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  const button = form.querySelector('[type=submit]');
  busy(button, async () => {
    clearProblem($('ri-error'));
    if (!validate(form)) return;
    const captcha = captchaOf('ri');
    const r = await api.call('POST', '/v1/registration/sessions', {
      body: {
        id_number: $('ri-id').value.trim().toUpperCase(),
        nhi_card: $('ri-card').value.trim(),
        captcha: captcha.answer(),
      },
    });
    if (!r.ok) {
      captcha.load();
      if (r.problem.code === 'captcha-failed') fieldError($('ri-captcha'), 'invalid.captcha');
      showProblem($('ri-error'), r, { hold: [button] });
      return;
    }
    api.saveToken('registration', r.data);
    form.reset();
    await loadRegistrationAndShow(current.seq);
  });
});

async function enterRegForm(params, seq) {
  if (!api.token('registration')) { go('register', true); return; }
  const reg = state.registration;
  const editing = Boolean(reg && reg.status === 'registered');
  const form = $('rf-form');
  form.reset();
  for (const input of form.querySelectorAll('[data-rule]')) fieldError(input, null);
  fieldError($('rf-vaccines'), null);
  $('rf-edit-note').hidden = !editing;
  $('rf-back').hidden = !editing;
  setText($('rf-submit'), editing ? 'reg.form.submitEdit' : 'reg.form.submitNew');
  if (editing) {
    $('rf-name').value = reg.name;
    for (const box of form.elements.vaccines) box.checked = reg.vaccines.includes(box.value);
  }
  // The person may type while the places load: only the two selects wait for them.
  const fillPlaces = () => {
    fillCounties($('rf-county'), $('rf-county').value || (editing ? reg.county : ''));
    fillDistricts($('rf-district'), $('rf-county').value, $('rf-district').value || (editing ? reg.district : ''));
  };
  fillPlaces();
  if (!state.geo && (await ensureGeo(seq, $('rf-error'))) && !stale(seq)) fillPlaces();
}

$('rf-county').addEventListener('change', () => fillDistricts($('rf-district'), $('rf-county').value, ''));

$('rf-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  const button = $('rf-submit');
  busy(button, async () => {
    clearProblem($('rf-error'));
    const vaccines = [...form.elements.vaccines].filter((b) => b.checked).map((b) => b.value);
    let ok = validate(form);
    fieldError($('rf-vaccines'), vaccines.length ? null : 'invalid.vaccines');
    if (!vaccines.length && ok) { form.elements.vaccines[0].focus(); ok = false; }
    if (!ok) return;
    const editing = Boolean(state.registration && state.registration.status === 'registered');
    const r = await api.call(editing ? 'PUT' : 'POST', '/v1/me/registration', {
      auth: 'registration',
      body: {
        name: $('rf-name').value.trim(),
        mobile: $('rf-mobile').value.trim(),
        county: $('rf-county').value,
        district: $('rf-district').value,
        vaccines,
      },
    });
    if (r.ok) {
      state.registration = r.data;
      announce(editing ? 'reg.saved' : 'reg.created');
      go('register/done');
      return;
    }
    if (r.problem.code === 'already-registered' && r.problem.registration) {
      state.registration = r.problem.registration;
      announce('reg.already');
      go('register/done');
      return;
    }
    if (r.problem.code === 'unauthenticated' || r.problem.code === 'not-registered' && editing) {
      state.registration = null;
      state.flash = { box: $('ri-error'), result: r };
      go('register', true);
      return;
    }
    const field = r.problem.field && form.querySelector(`[name="${r.problem.field}"]`);
    if (field && field.id) fieldError(field, `invalid.${field.dataset.rule || 'required'}`);
    showProblem($('rf-error'), r, { hold: [button] });
  });
});

async function enterRegDone(params, seq) {
  if (!api.token('registration')) { go('register', true); return; }
  if (!state.registration) {
    const r = await api.call('GET', '/v1/me/registration', { auth: 'registration' });
    if (stale(seq)) return;
    if (r.ok) state.registration = r.data;
    else if (r.problem.code === 'not-registered') { go('register/form', true); return; } else {
      showProblem($('rd-error'), r, { then: () => enterRegDone(params, seq) });
      return;
    }
  }
  renderRegDone();
}

function renderRegDone() {
  const reg = state.registration;
  const live = Boolean(reg && reg.status === 'registered');
  $('rd-live').hidden = !live;
  $('rd-cancelled').hidden = live;
  if (!live) return;
  $('rd-serial').textContent = reg.serial_text;
  $('rd-name').textContent = reg.name;
  $('rd-id').textContent = reg.id_number;
  $('rd-mobile').textContent = reg.mobile;
  $('rd-place').textContent = `${placeName(reg.county)} ${placeName(reg.county, reg.district)}`;
  $('rd-vaccines').textContent = reg.vaccines.join(', ');
  $('rd-registered').replaceChildren(timeEl(reg.registered_at));
  $('rd-modified').replaceChildren(timeEl(reg.modified_at));
}

$('rd-cancel').addEventListener('click', (e) => {
  const button = e.currentTarget;
  busy(button, async () => {
    clearProblem($('rd-error'));
    if (!(await confirmDialog(t('reg.cancelConfirm')))) { button.focus(); return; }
    const r = await api.call('DELETE', '/v1/me/registration', { auth: 'registration' });
    if (r.ok || r.problem.code === 'not-registered') {
      state.registration = { ...state.registration, status: 'cancelled' };
      renderRegDone();
      announce('reg.cancelled');
      $('rd-h').focus();
      return;
    }
    if (r.problem.code === 'unauthenticated') {
      state.flash = { box: $('ri-error'), result: r };
      go('register', true);
      return;
    }
    showProblem($('rd-error'), r, { hold: [button] });
  });
});

// --- Login ---------------------------------------------------------------------------------

function enterLogin() {
  showLoginMethod();
  captchaOf('li').load();
}

function showLoginMethod() {
  const otp = $('li-form').elements.method.value === 'app-otp';
  $('li-card-fields').hidden = otp;
  $('li-otp-fields').hidden = !otp;
}

for (const radio of $('li-form').elements.method) radio.addEventListener('change', showLoginMethod);

$('li-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  const button = form.querySelector('[type=submit]');
  busy(button, async () => {
    clearProblem($('li-error'));
    if (!validate(form)) return;
    const captcha = captchaOf('li');
    const body = form.elements.method.value === 'app-otp'
      ? { method: 'app-otp', id_number: $('li-id').value.trim().toUpperCase(), otp: $('li-otp').value.trim() }
      : { method: 'card-password', nhi_card: $('li-card').value.trim(), password: $('li-password').value };
    body.captcha = captcha.answer();
    const r = await api.call('POST', '/v1/sessions', { body });
    if (!r.ok) {
      captcha.load();
      if (r.problem.code === 'captcha-failed') fieldError($('li-captcha'), 'invalid.captcha');
      showProblem($('li-error'), r, { hold: [button] });
      return;
    }
    api.saveToken('booking', r.data);
    form.reset();
    showLoginMethod();
    announce('login.ok');
    const next = current.params.get('next');
    go(Object.hasOwn(VIEWS, next) && next !== 'login' ? next : 'book');
  });
});

$('logout').addEventListener('click', () => {
  api.clearSession();
  queue.leave();
  state.registration = null;
  state.bookings = null;
  updateSessionUi();
  announce('logout.ok');
  go('');
});

// --- Places (GET /v1/geography) ----------------------------------------------------------

async function ensureGeo(seq, errorBox) {
  if (state.geo) return true;
  const r = await api.call('GET', '/v1/geography');
  if (stale(seq)) return false;
  if (!r.ok || !Array.isArray(r.data?.counties)) {
    showProblem(errorBox, r.ok ? { problem: { code: 'internal' }, retryAfter: null } : r, {
      then: () => route(), focus: false,
    });
    return false;
  }
  const zip = (d) => d.zipcode || '999';
  const counties = r.data.counties.map((c) => ({
    ...c,
    districts: [...c.districts].sort((a, b) => zip(a).localeCompare(zip(b))),
  }));
  counties.sort((a, b) => zip(a.districts[0] || {}).localeCompare(zip(b.districts[0] || {})));
  state.geo = counties;
  return true;
}

/** A county or district's name for the reader: the official Chinese, with the English after it. */
function placeName(county, district) {
  const c = state.geo?.find((x) => x.name === county);
  const item = district === undefined ? c : c?.districts.find((d) => d.name === district);
  const zh = district === undefined ? county : district;
  return lang() !== 'zh-TW' && item?.name_en ? `${zh} ${item.name_en}` : zh;
}

function placeholderOption() {
  return h('option', { value: '', text: t('common.choose') });
}

function fillCounties(select, chosen) {
  select.disabled = !state.geo;
  select.replaceChildren(placeholderOption(), ...(state.geo || []).map((c) => h('option', {
    value: c.name, text: placeName(c.name), selected: c.name === chosen,
  })));
}

/** Districts of `county`; with `phase`, those without a site in it are shown but disabled. */
function fillDistricts(select, county, chosen, phase) {
  const c = state.geo?.find((x) => x.name === county);
  select.replaceChildren(placeholderOption(), ...(c ? c.districts : []).map((d) => h('option', {
    value: d.name,
    text: placeName(county, d.name),
    disabled: phase ? !(d.sites && d.sites[phase] > 0) : false,
    selected: d.name === chosen,
  })));
  select.disabled = !c;
}

// --- Availability and booking ---------------------------------------------------------------

/** The pending booking intent: its Idempotency-Key is reused when the same click is retried. */
const INTENT = 'slotd.intent';
function intentFor(op, slot) {
  try {
    const saved = JSON.parse(sessionStorage.getItem(INTENT) || 'null');
    if (saved && saved.op === op && saved.slot === slot) return saved;
  } catch { /* a fresh intent below */ }
  const intent = { op, slot, key: api.newKey() };
  sessionStorage.setItem(INTENT, JSON.stringify(intent));
  return intent;
}
const forgetIntent = () => sessionStorage.removeItem(INTENT);

async function enterBook(params, seq) {
  const box = $('bk-error');
  $('bk-login-note').hidden = Boolean(api.token('booking'));
  const changeId = params.get('change');
  if (changeId && !api.token('booking')) { needLogin('me'); return; }
  const [phasesOk, geoOk] = await Promise.all([ensurePhases(seq, box), ensureGeo(seq, box)]);
  if (stale(seq) || !phasesOk || !geoOk) return;
  let changing = null;
  if (changeId) {
    if (!state.bookings && !(await loadBookings(seq, box))) return;
    changing = state.bookings.find((b) => b.booking === changeId && b.status === 'booked') || null;
    if (!changing) { go('me', true); return; }
    state.search = {
      phase: changing.phase, county: changing.county, district: changing.district, date: changing.date,
    };
  } else if (params.get('phase')) {
    state.search = { ...(state.search || {}), phase: params.get('phase') };
  }
  state.changing = changing;
  renderBook(state.search);
  syncRoom();
  // A change starts from the booking's own site and day, already searched; coming back
  // to the page shows the seats as they are now, not as they were.
  if (changing || state.availability) await search(seq, false);
}

/** Phases, refetched when older than this: a window opens or closes while the page is open. */
const PHASES_MAX_AGE_MS = 30000;

async function ensurePhases(seq, box) {
  if (state.phases && Date.now() - state.phasesAt < PHASES_MAX_AGE_MS) return true;
  const r = await api.call('GET', '/v1/phases');
  if (stale(seq)) return false;
  if (!r.ok) {
    if (state.phases) return true; // an older list still serves
    showProblem(box, r, { then: () => route(), focus: false });
    return false;
  }
  state.phases = r.data.phases;
  state.phasesAt = Date.now();
  return true;
}

/** The search form's current choice (what a re-render keeps). */
function formChoice() {
  return { phase: $('bk-phase').value, county: $('bk-county').value, district: $('bk-district').value, date: $('bk-date').value };
}

/** Fills the search form with `choice` and redraws the last results. */
function renderBook(choice) {
  const s = choice || {};
  const phases = state.phases || [];
  const phase = phases.find((p) => p.id === s.phase)
    || phases.find((p) => p.status === 'open') || phases[0];
  $('bk-phase').replaceChildren(...phases.map((p) => h('option', {
    value: p.id,
    text: t('phase.option', { name: t('phase.name', { id: p.id }), status: t(`phase.${p.status}`) }),
    selected: p === phase,
  })));
  $('bk-phase').disabled = Boolean(state.changing);
  renderPhaseInfo();
  fillCounties($('bk-county'), s.county || '');
  fillDistricts($('bk-district'), $('bk-county').value, s.district || '', phase?.id);
  fillDates(phase, s.date);
  const changing = state.changing;
  $('bk-changing').hidden = !changing;
  if (changing) setText($('bk-changing-text'), 'book.changing', { code: changing.code });
  renderSites();
  queue.render();
}

function selectedPhase() {
  return (state.phases || []).find((p) => p.id === $('bk-phase').value);
}

function renderPhaseInfo() {
  const p = selectedPhase();
  const info = $('bk-phase-info');
  if (!p) { info.textContent = ''; return; }
  info.textContent = t('book.window', { from: formatTime(p.opens_at), to: formatTime(p.closes_at) })
    + (p.invitation_required ? ` ${t('book.invitedOnly')}` : '');
}

function fillDates(phase, chosen) {
  const days = [];
  const range = phase?.vaccination_dates;
  if (range) {
    for (let d = new Date(`${range.first}T00:00:00Z`); d <= new Date(`${range.last}T00:00:00Z`);
      d.setUTCDate(d.getUTCDate() + 1)) {
      days.push(d.toISOString().slice(0, 10));
    }
  }
  $('bk-date').replaceChildren(placeholderOption(), ...days.map((day) => h('option', {
    value: day, text: formatDay(day), selected: day === chosen || (!chosen && days.length === 1),
  })));
}

$('bk-phase').addEventListener('change', () => {
  renderPhaseInfo();
  fillDistricts($('bk-district'), $('bk-county').value, $('bk-district').value, $('bk-phase').value);
  fillDates(selectedPhase(), $('bk-date').value);
  // The address names the phase, so that a reload comes back to it (and to its waiting room).
  if (current?.path === 'book' && !state.changing) {
    history.replaceState(null, '', `#/book?phase=${encodeURIComponent($('bk-phase').value)}`);
  }
  syncRoom();
});

$('bk-county').addEventListener('change', () => {
  fillDistricts($('bk-district'), $('bk-county').value, '', $('bk-phase').value);
});

$('bk-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const button = e.currentTarget.querySelector('[type=submit]');
  busy(button, () => search(current.seq, true, button));
});

/** Fetches the availability of the form's choice and shows it; `focus` moves to the results. */
async function search(seq, focus, button) {
  const form = $('bk-form');
  clearProblem($('bk-error'));
  if (!validate(form)) return;
  const q = {
    phase: $('bk-phase').value, county: $('bk-county').value, district: $('bk-district').value, date: $('bk-date').value,
  };
  const qs = new URLSearchParams({ county: q.county, district: q.district, date: q.date });
  const r = await api.call('GET', `/v1/phases/${encodeURIComponent(q.phase)}/availability?${qs}`);
  if (stale(seq)) return;
  if (!r.ok) {
    showProblem($('bk-error'), r, { hold: [button], then: r.retryAfter !== null ? () => search(seq, focus) : undefined });
    return;
  }
  state.search = q;
  state.availability = r.data;
  renderSites();
  if (focus) $('bk-results-h').focus();
}

function renderSites() {
  const page = state.availability;
  const s = state.search;
  const results = $('bk-results');
  // Only a page of the current choice is shown.
  if (!page || !s || page.phase !== s.phase) { results.hidden = true; return; }
  results.hidden = false;
  $('bk-asof').textContent = t('book.asOf', { time: formatTime(page.as_of) });
  $('bk-none').hidden = page.sites.length > 0;
  const changing = state.changing;
  $('bk-sites').replaceChildren(...page.sites.map((site) => h('li', { class: 'site-card' },
    h('h3', { text: site.name }),
    h('p', { class: 'address', text: site.address }),
    slotTable(site, changing))));
  syncBookButtons();
}

/** A site's slots as a table: a row per period, a column per vaccine. */
function slotTable(site, changing) {
  const periods = [...new Set(site.slots.map((s) => s.period))].sort();
  const vaccines = [...new Set(site.slots.map((s) => s.vaccine))]
    .sort((a, b) => (VACCINES.indexOf(a) + 1 || 99) - (VACCINES.indexOf(b) + 1 || 99));
  return h('table', { class: 'slots' },
    h('caption', { class: 'visually-hidden', text: site.name }),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col', text: t('book.period') }),
      vaccines.map((v) => h('th', { scope: 'col', text: v })))),
    h('tbody', {}, periods.map((period) => h('tr', {},
      h('th', { scope: 'row', class: 'period', text: period }),
      vaccines.map((v) => {
        const slot = site.slots.find((s) => s.period === period && s.vaccine === v);
        return h('td', {}, slot ? slotCell(site, slot, changing) : '');
      })))));
}

function slotCell(site, slot, changing) {
  const mine = changing && changing.slot === slot.slot;
  const full = slot.remaining <= 0;
  const words = {
    site: site.name, date: formatDay(slot.date), period: slot.period, vaccine: slot.vaccine,
  };
  let action;
  if (mine) action = h('span', { class: 'badge', text: t('book.current') });
  else if (full) action = h('span', { class: 'badge muted', text: t('book.full') });
  else {
    action = h('button', {
      type: 'button',
      class: 'book',
      text: t(changing ? 'book.changeTo' : 'book.book'),
      'aria-label': t(changing ? 'book.changeAria' : 'book.bookAria', words),
      'data-slot': slot.slot,
      onclick: (e) => bookSlot(site, slot, e.currentTarget),
    });
  }
  return h('div', { class: `slot${mine ? ' mine' : ''}` },
    full ? null : h('span', { class: 'remaining', text: t('book.remaining', { n: slot.remaining }) }),
    action);
}

function bookSlot(site, slot, button) {
  if (!api.token('booking')) { needLogin('book'); return; }
  const changing = state.changing;
  const phase = state.search.phase;
  const buttons = [...document.querySelectorAll('#bk-sites button.book')];
  busy(button, async () => {
    const box = $('bk-book-error');
    clearProblem(box);
    for (const b of buttons) b.disabled = true;
    if (!changing) {
      // A new booking goes through the phase's waiting room, if it has one: queue first
      // when that has not been done, and wait for the person's turn.
      const standing = await queue.admit(phase);
      if (standing && standing.state !== 'admitted') {
        for (const b of buttons) if (b !== button) b.disabled = false;
        queue.focus();
        return;
      }
    }
    const op = changing ? `change:${changing.booking}` : `book:${phase}`;
    const intent = intentFor(op, slot.slot);
    const r = changing
      ? await api.call('PUT', `/v1/me/bookings/${encodeURIComponent(changing.booking)}`, {
        auth: 'booking', key: intent.key, body: { slot: slot.slot },
      })
      : await api.call('POST', `/v1/phases/${encodeURIComponent(phase)}/bookings`, {
        auth: 'booking', key: intent.key, body: { slot: slot.slot }, headers: queue.ticketHeader(phase),
      });
    for (const b of buttons) if (b !== button) b.disabled = false;
    // A write that got no answer, or was shed before it was decided, is the same intent when
    // retried: its key makes a second arrival harmless. Anything decided starts afresh.
    const undecided = !r.ok && (r.status === 0 || r.status === 429 || r.status === 503);
    if (!undecided) forgetIntent();
    if (r.ok) {
      state.bookings = null;
      state.changing = null;
      announce(changing ? 'book.changed' : 'book.booked');
      go(`me?booking=${encodeURIComponent(r.data.booking)}`);
      return;
    }
    if (r.problem.code === 'unauthenticated') { needLogin('book', r); return; }
    if (r.problem.code === 'not-admitted') {
      // Not this person's turn (or no ticket the server knows): back to the waiting room.
      queue.notAdmitted(phase, r);
      return;
    }
    const extra = [];
    if (r.problem.code === 'already-booked') {
      state.bookings = null;
      extra.push(h('p', {}, h('a', { href: '#/me', text: t('book.seeExisting') })));
    }
    showProblem(box, r, { hold: buttons, extra });
    if (r.problem.code === 'slot-full') {
      // Show the seats as they are now; the message stays.
      const again = await api.call('GET', `/v1/phases/${encodeURIComponent(state.search.phase)}/availability?${
        new URLSearchParams({ county: state.search.county, district: state.search.district, date: state.search.date })}`);
      if (again.ok) { state.availability = again.data; renderSites(); }
    }
  }).then(() => syncBookButtons());
}

// --- Waiting room (queue.js) ---------------------------------------------------------------

/**
 * Watches the waiting room of the chosen phase: for a logged-in person booking anew (a
 * change of slot does not queue) in a phase that has not closed. A phase without a room
 * answers at once that the person may book, and nothing is shown.
 */
function syncRoom() {
  const p = selectedPhase();
  if (!api.token('booking') || state.changing || !p || p.status === 'closed') queue.leave();
  else queue.enter(p.id);
  syncBookButtons();
}

/** The booking buttons wait for the person's turn while the phase's room says to wait. */
function syncBookButtons() {
  const phase = state.search?.phase;
  const blocked = Boolean(phase && !state.changing && queue.blocks(phase));
  for (const b of document.querySelectorAll('#bk-sites button.book')) {
    // A button held by a problem's countdown, or busy with its request, keeps its state.
    if (b.dataset.held || b.hasAttribute('aria-busy')) continue;
    b.disabled = blocked;
  }
  $('bk-queue-note').hidden = !blocked || queue.standing(phase)?.state === 'sold-out';
}

/**
 * Admitted in a phase the list fetched earlier called upcoming: its window has opened since
 * (the list is refetched only now and then, and not by a whole crowd at the opening).
 */
function markOpened(phaseId) {
  const p = state.phases?.find((x) => x.id === phaseId);
  if (queue.standing(phaseId)?.state !== 'admitted' || p?.status !== 'upcoming') return;
  if (Date.parse(p.opens_at) > Date.now()) return;
  p.status = 'open';
  const option = [...$('bk-phase').options].find((o) => o.value === phaseId);
  if (option) option.textContent = t('phase.option', { name: t('phase.name', { id: p.id }), status: t('phase.open') });
}

queue.configure({
  changed: (phase) => { markOpened(phase); syncBookButtons(); },
  unauthenticated: (result) => needLogin('book', result),
});

// --- My bookings ---------------------------------------------------------------------------

async function loadBookings(seq, box) {
  const r = await api.call('GET', '/v1/me/bookings?limit=100', { auth: 'booking' });
  if (stale(seq)) return false;
  if (r.ok) { state.bookings = r.data.bookings; return true; }
  if (r.problem.code === 'unauthenticated') { needLogin('me', r); return false; }
  showProblem(box, r, { then: () => route(), focus: false });
  return false;
}

async function enterMe(params, seq) {
  if (!api.token('booking')) { needLogin('me'); return; }
  if (!(await loadBookings(seq, $('me-error')))) return;
  renderMe();
  const focusId = params.get('booking');
  const card = focusId && document.querySelector(`[data-booking="${CSS.escape(focusId)}"] h2`);
  if (card) card.focus();
}

const LIVE = new Set(['booked', 'attended']);

function renderMe() {
  const all = state.bookings || [];
  const live = all.filter((b) => LIVE.has(b.status));
  const past = all.filter((b) => !LIVE.has(b.status)).reverse();
  $('me-none').hidden = live.length > 0;
  $('me-live').replaceChildren(...live.map((b) => bookingCard(b, true)));
  $('me-past').hidden = past.length === 0;
  $('me-past-list').replaceChildren(...past.map((b) => bookingCard(b, false)));
  drawQrCodes();
}

function bookingCard(b, live) {
  const when = `${formatDay(b.date)} ${b.period}`;
  const facts = h('dl', { class: 'facts' },
    h('dt', { text: t('field.phase') }), h('dd', { text: t('phase.name', { id: b.phase }) }),
    h('dt', { text: t('me.when') }), h('dd', { text: when }),
    h('dt', { text: t('me.site') }),
    h('dd', { text: `${b.site_name}, ${placeName(b.county)} ${placeName(b.county, b.district)}` }),
    h('dt', { text: t('me.vaccine') }), h('dd', { text: b.vaccine }),
    h('dt', { text: t('me.status') }), h('dd', { text: t(`status.${b.status}`) }),
    h('dt', { text: t('me.bookedAt') }), h('dd', {}, timeEl(b.booked_at)));
  if (!live) {
    return h('li', { class: 'card past', 'data-booking': b.booking },
      h('h2', { tabindex: '-1', text: `${b.site_name} · ${when}` }), facts);
  }
  const changeable = b.status === 'booked';
  return h('li', { class: 'card booking', 'data-booking': b.booking },
    h('h2', { tabindex: '-1', text: `${b.site_name} · ${when}` }),
    h('div', { class: 'checkin' },
      h('div', {},
        h('p', { class: 'code-label', text: t('me.code') }),
        h('p', { class: 'code', text: b.code }),
        h('p', { class: 'note', text: t('me.showAtSite') })),
      h('img', { class: 'qr', alt: t('me.qrAlt', { code: b.code }), 'data-code': b.code })),
    facts,
    changeable && h('p', { class: 'actions' },
      h('a', {
        class: 'button secondary',
        href: `#/book?change=${encodeURIComponent(b.booking)}`,
        text: t('me.change'),
      }),
      h('button', { type: 'button', class: 'danger', text: t('me.cancel'), onclick: (e) => cancelBooking(b, e.currentTarget) })));
}

/** Draws each check-in code as a QR code, locally (the vendored encoder loads on first use). */
async function drawQrCodes() {
  const images = [...document.querySelectorAll('img.qr[data-code]:not([src])')];
  if (!images.length) return;
  const { qrcode } = await import('./vendor/qrcode.mjs');
  for (const img of images) {
    const qr = qrcode(0, 'M');
    qr.addData(img.dataset.code);
    qr.make();
    // 6 px a module, whole pixels; 4 modules of quiet zone, as scanners need.
    const size = qr.getModuleCount() * 6 + 48;
    img.width = size;
    img.height = size;
    img.src = qr.createDataURL(6, 24);
  }
}

function cancelBooking(b, button) {
  busy(button, async () => {
    clearProblem($('me-error'));
    const question = t('me.cancelConfirm', { date: formatDay(b.date), period: b.period, site: b.site_name });
    if (!(await confirmDialog(question))) { button.focus(); return; }
    const r = await api.call('DELETE', `/v1/me/bookings/${encodeURIComponent(b.booking)}`, { auth: 'booking' });
    if (r.ok || r.problem.code === 'unknown-booking') {
      if (r.ok) announce('me.cancelled');
      else showProblem($('me-error'), r);
      if (await loadBookings(current.seq, $('me-error'))) renderMe();
      if (r.ok) $('me-h').focus();
      return;
    }
    if (r.problem.code === 'unauthenticated') { needLogin('me', r); return; }
    showProblem($('me-error'), r, { hold: [button] });
  });
}

// --- Language -----------------------------------------------------------------------------

const LANG_KEY = 'slotd.lang';

function applyLang(tag) {
  const chosen = setLang(tag);
  document.documentElement.lang = chosen;
  $('lang').value = chosen;
  translate(document);
  retranslateCountdowns(document.querySelectorAll('.alert'));
  if (current) {
    document.title = `${t(current.view.title)} · ${t('app.title')}`;
    current.view.render?.();
  }
}

$('lang').addEventListener('change', () => {
  const tag = $('lang').value;
  // Only the language is kept across visits; nothing personal goes to localStorage.
  try { localStorage.setItem(LANG_KEY, tag); } catch { /* private mode: this visit only */ }
  applyLang(tag);
});

// --- Start ---------------------------------------------------------------------------------

$('skip').addEventListener('click', (e) => {
  e.preventDefault();
  $('main').focus();
});

// zh-TW unless the person chose another language on an earlier visit.
let saved = null;
try { saved = localStorage.getItem(LANG_KEY); } catch { /* no storage */ }
applyLang(saved || DEFAULT_LANG);
window.addEventListener('hashchange', () => route());
route(true);
