// The console's shell: sign-in (a pasted token, or the `#token=` link the local runner prints),
// sign-out, and hash routes (#/dashboard, #/providers, #/models, #/logs), each a view module
// whose render(main) returns a cleanup function.

import { session, whenAuthFails } from './api.js';
import { clear } from './dom.js';
import * as dashboard from './dashboard.js';
import * as providers from './providers.js';
import * as models from './models.js';
import * as logs from './logs.js';

const VIEWS = { dashboard, providers, models, logs };

const $ = (id) => document.getElementById(id);
let cleanup = null;

function showSignIn(message) {
  if (cleanup) cleanup();
  cleanup = null;
  for (const dialog of document.querySelectorAll('dialog')) dialog.remove(); // forms of the old session
  $('shell').hidden = true;
  $('signin').hidden = false;
  const error = $('signin-error');
  error.textContent = message || '';
  error.hidden = !message;
  $('signin-token').focus();
}

function route() {
  if (!session.token()) {
    showSignIn();
    return;
  }
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
  document.title = `${name[0].toUpperCase()}${name.slice(1)} · Maestro admin`;
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
  const message = error.status === 403
    ? `This token is not an admin token: ${error.message}`
    : `Sign in again: ${error.message}`;
  showSignIn(message);
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

window.addEventListener('hashchange', () => {
  takeTokenFromLink();
  route();
});

takeTokenFromLink();
route();
