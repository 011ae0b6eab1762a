// The console's shell: sign-in (a pasted token, or the `#token=` link the local runner prints),
// sign-out, hash routes (#/dashboard, #/live, #/spend, #/providers, #/models, #/routes, #/apikeys, #/logs,
// #/alerts), each a view module whose
// render(main) returns a cleanup function, and the language switch, which re-renders the page in
// place (same route, no reload).

import { session, whenAuthFails } from './api.js';
import { clear, h } from './dom.js';
import { locale, onLocaleChange, setLocale, t, tParts } from './i18n.js';
import * as dashboard from './dashboard.js';
import * as providers from './providers.js';
import * as models from './models.js';
import * as routes from './routes.js';
import * as apikeys from './apikeys.js';
import * as logs from './logs.js';
import * as live from './live.js';
import * as spend from './spend.js';
import * as alerts from './alerts.js';

const VIEWS = { dashboard, live, spend, providers, models, routes, apikeys, logs, alerts };

const $ = (id) => document.getElementById(id);
let cleanup = null;
// The sign-in error as a function of the locale, so a switch of language re-words it.
let signInMessage = null;

/** The page's own labels (index.html's `data-i18n*` attributes), `<html lang>` and the switches. */
function translateShell() {
  document.documentElement.lang = locale();
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of document.querySelectorAll('[data-i18n-aria-label]')) el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
  clear($('signin-help'), tParts('signin.help', { link: h('em', {}, 'Admin console'), command: h('code', {}, 'maestro serve') }));
  for (const select of document.querySelectorAll('select.lang-switch')) select.value = locale();
  showSignInMessage();
}

function showSignInMessage() {
  const error = $('signin-error');
  const message = signInMessage ? signInMessage() : '';
  error.textContent = message;
  error.hidden = !message;
}

/** `message`: a function returning the text in the current locale, or nothing. */
function showSignIn(message) {
  if (cleanup) cleanup();
  cleanup = null;
  for (const dialog of document.querySelectorAll('dialog')) dialog.remove(); // forms of the old session
  $('shell').hidden = true;
  $('signin').hidden = false;
  document.title = t('app.title');
  signInMessage = message || null;
  showSignInMessage();
  $('signin-token').focus();
}

function route() {
  if (!session.token()) {
    showSignIn();
    return;
  }
  signInMessage = null;
  $('signin').hidden = true;
  $('shell').hidden = false;
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1];
  if (!VIEWS[name]) {
    history.replaceState(null, '', '#/dashboard');
    return route();
  }
  for (const link of document.querySelectorAll('.nav a')) {
    if (link.dataset.view === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (cleanup) cleanup();
  $('toast').hidden = true; // a message about the last view, not this one
  const main = clear($('view'));
  document.title = t('app.viewTitle', { view: t(`nav.${name}`) });
  cleanup = VIEWS[name].render(main) || null;
}

// A `#token=` link: keep the token for this tab and take it out of the address bar and history
// at once (a fragment never reaches the server, but it should not linger on screen either).
function takeTokenFromLink() {
  const match = location.hash.match(/^#token=([^&]+)/);
  if (!match) return;
  let token = match[1];
  try {
    token = decodeURIComponent(token);
  } catch {
    // Not URL-encoded: JWTs never need it anyway.
  }
  session.set(token);
  history.replaceState(null, '', `${location.pathname}${location.search}#/dashboard`);
}

whenAuthFails((error) => {
  session.clear();
  // The server's message as it is, after the console's own words.
  showSignIn(() => t(error.status === 403 ? 'signin.notAdmin' : 'signin.again', { message: error.message }));
});

$('signin-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = $('signin-token').value.trim().replace(/^Bearer\s+/i, '');
  if (!token) return;
  $('signin-token').value = '';
  session.set(token);
  if (!location.hash.startsWith('#/')) history.replaceState(null, '', '#/dashboard');
  route();
});

$('signout').addEventListener('click', () => {
  session.clear();
  history.replaceState(null, '', `${location.pathname}${location.search}`);
  showSignIn();
});

for (const select of document.querySelectorAll('select.lang-switch')) {
  select.addEventListener('change', () => setLocale(select.value));
}

// A new language: the shell's labels, then the current view rendered again where it is.
onLocaleChange(() => {
  translateShell();
  if ($('shell').hidden) document.title = t('app.title');
  else route();
});

window.addEventListener('hashchange', () => {
  takeTokenFromLink();
  route();
});

translateShell();
takeTokenFromLink();
route();
