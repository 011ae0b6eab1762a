// The admin console in a real headless Chromium against the local runner (started by run.sh).
//
// The same scenario runs once per language (English, 简体中文), each against a runner of its own
// with a fresh data dir, the language chosen in localStorage before the page loads. The tests of
// a language run in order on one page, as one admin session would: sign in; add a provider (a
// fake upstream served here) and two keys, validate them, sync the models; price the offline
// `demo/echo` model and activate a synced one; deactivate a key and meet a stale version; then a
// known set of calls, and the dashboard and logs must show exactly them. Labels are found by role
// or data attribute and compared with the console's own dictionary (i18n.js) in that language;
// money, numbers and dates with what Intl gives for its locale. Then the switch itself (English)
// and a sweep for English labels left on the Chinese pages. Any console error, page error or
// failed request that a test did not announce fails that test.

import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

// MAESTRO_URLS: "en=http://127.0.0.1:1234 zh-CN=http://127.0.0.1:5678", one runner per language.
const URLS = Object.fromEntries((process.env.MAESTRO_URLS || '').split(/\s+/).filter(Boolean).map((pair) => pair.split('=')));
const ADMIN = process.env.MAESTRO_ADMIN_TOKEN;
const CALLER = process.env.MAESTRO_CALLER_TOKEN;
const CHROMIUM = process.env.MAESTRO_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.MAESTRO_CONSOLE_ARTIFACTS || path.join(os.tmpdir(), 'console-artifacts');
assert.ok(URLS.en && URLS['zh-CN'] && ADMIN && CALLER, 'run through tests/console/run.sh (MAESTRO_URLS and the tokens)');

// The console's dictionaries, from the very file the page loads (a data: URL: Node 20 would read
// a bare .js outside a "type": "module" package as CommonJS).
const I18N = fs.readFileSync(new URL('../../functions/admin/console/i18n.js', import.meta.url));
const { messages, translate } = await import(`data:text/javascript;base64,${I18N.toString('base64')}`);

// How each language writes what the console formats with Intl (money in US dollars).
const FORMS = {
  en: {
    money: (dollars) => `$${dollars}`,
    latency: /^≤ \d+ m?s$/,
    dateTime: /^[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{2}:\d{2}:\d{2}$/,
  },
  'zh-CN': {
    money: (dollars) => `US$${dollars}`,
    latency: /^≤ \d+(毫秒|秒)$/,
    dateTime: /^\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}:\d{2}$/,
  },
};
// The Intl options of i18n.js's fmtDateTime.
const DATE_TIME = { dateStyle: 'medium', timeStyle: 'medium', hourCycle: 'h23', timeZone: 'UTC' };

// Secrets typed into the console: they must never be on the page again.
const PRIMARY_SECRET = 'sk-ok-console-primary-7f3a9c';
const SPARE_SECRET = 'sk-revoked-console-spare-42d1';
// The keys of the `flaky` provider (its upstream path `/flaky/v1`), for a call's attempts.
const FLAKY_SECRETS = { a: 'sk-flaky-console-a-aaaa', b: 'sk-flaky-console-b-bbbb', c: 'sk-revoked-flaky-c-cccc' };

// The known calls. demo/echo counts ceil(chars / 4) + 3 per message for the prompt and
// ceil(chars / 4) for its answer, "Echo from Maestro's demo model: " (32 chars) + the prompt:
// "ping-7c1e" (9 chars) → 3 + 3 = 6 prompt tokens, ceil(41 / 4) = 11 completion tokens.
const PROMPT = 'ping-7c1e';
const PROMPT_TOKENS = 6;
const COMPLETION_TOKENS = 11;
const SUCCESSES = 7;
const FAILURES = 2; // to fakeup/fake-small, whose upstream refuses every chat request (400)
// Prices set through the console: $3 in and $15 out per million tokens, so one call costs
// 6 × 3 + 11 × 15 = 183 micro-USD and the seven cost 1,281 micro-USD = $0.001281.
const COST_MICROS = SUCCESSES * (PROMPT_TOKENS * 3 + COMPLETION_TOKENS * 15);

let upstream;
/** What the `flaky` upstream answers its next chat calls: `[status, message]`, `{key}` in the
 * message becoming the key the call carried; once used up, it serves. */
const flakyReplies = [];
let userDir;
let context;
let page;
const problems = [];
let expected = [];

/**
 * The fake provider: `GET /v1/models` for `sk-ok-…` keys (401 otherwise); a chat with another key
 * is a 401, a one-token chat (a key's test call) is answered, any other chat is a 400. Under
 * `/flaky/v1`: models for any key but a `sk-revoked-…` one, and chats answered by
 * `flakyReplies` first.
 */
function startUpstream() {
  const server = http.createServer(async (req, res) => {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const key = (req.headers.authorization || '').replace(/^Bearer /, '');
    const send = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url.startsWith('/flaky/v1/')) {
      if (req.method === 'GET' && req.url === '/flaky/v1/models') {
        if (key.startsWith('sk-revoked-')) return send(401, { error: { message: 'Incorrect API key provided.', type: 'invalid_request_error', code: 'invalid_api_key' } });
        return send(200, { object: 'list', data: [{ id: 'flaky-m', object: 'model', owned_by: 'flaky' }] });
      }
      if (req.method === 'POST' && req.url === '/flaky/v1/chat/completions') {
        const next = flakyReplies.shift();
        if (next) return send(next[0], { error: { message: next[1].replaceAll('{key}', key), type: 'server_error', code: null } });
        return send(200, {
          id: 'chatcmpl-flaky', object: 'chat.completion', created: 1, model: 'flaky-m',
          choices: [{ index: 0, message: { role: 'assistant', content: 'at last' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 },
        });
      }
    }
    if (req.method === 'GET' && req.url === '/v1/models') {
      if (key.startsWith('sk-ok-')) {
        return send(200, { object: 'list', data: [
          { id: 'fake-small', object: 'model', owned_by: 'fake' },
          { id: 'fake-large', object: 'model', owned_by: 'fake' },
        ] });
      }
      return send(401, { error: { message: 'Incorrect API key provided.', type: 'invalid_request_error', code: 'invalid_api_key' } });
    }
    if (req.method === 'POST' && req.url === '/v1/chat/completions') {
      if (!key.startsWith('sk-ok-')) {
        return send(401, { error: { message: 'Incorrect API key provided.', type: 'invalid_request_error', code: 'invalid_api_key' } });
      }
      // A key's test call (one output token) is answered; any other chat is refused.
      if (JSON.parse(raw || '{}').max_tokens === 1) {
        return send(200, {
          id: 'chatcmpl-test', object: 'chat.completion', created: 1, model: 'fake-small',
          choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'length' }],
          usage: { prompt_tokens: 14, completion_tokens: 1, total_tokens: 15 },
        });
      }
      return send(400, { error: { message: 'The fake upstream refuses every chat request.', type: 'invalid_request_error', code: 'fake_refusal' } });
    }
    return send(404, { error: { message: 'no such path' } });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Runs `fn` with console errors matching `patterns` allowed (e.g. the 403 a test provokes). */
async function expecting(patterns, fn) {
  expected = patterns;
  try {
    return await fn();
  } finally {
    expected = [];
  }
}

function problem(text) {
  if (!expected.some((re) => re.test(text))) problems.push(text);
}

const escape = (s) => String(s).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A regexp of `parts` in this order, anything between them. */
const inOrder = (...parts) => new RegExp(parts.map(escape).join('[\\s\\S]*'));

const text = (selector) => page.locator(selector).first().innerText();
/** Until no API call is in flight (the console sets `aria-busy` on <body> while one is). */
const idle = () => page.waitForFunction(() => !document.body.hasAttribute('aria-busy'));
/** Opens a view from the navigation and waits until it has loaded. */
async function view(name) {
  await page.locator(`.nav a[data-view="${name}"]`).click();
  await page.locator(`.nav a[data-view="${name}"][aria-current="page"]`).waitFor();
  await idle();
}

async function noSecretOnPage() {
  const html = await page.content();
  const values = await page.$$eval('input, textarea', (els) => els.map((e) => e.value));
  for (const secret of [PRIMARY_SECRET, SPARE_SECRET, ...Object.values(FLAKY_SECRETS), ADMIN, PROMPT]) {
    assert.ok(!html.includes(secret), `the page shows ${secret.slice(0, 12)}…`);
    assert.ok(!values.includes(secret), `a field still holds ${secret.slice(0, 12)}…`);
  }
}

async function noHorizontalOverflow(what) {
  const { scroll, width } = await page.evaluate(() => ({
    scroll: Math.max(document.documentElement.scrollWidth, document.body.scrollWidth),
    width: window.innerWidth,
  }));
  assert.ok(scroll <= width, `${what}: the page is ${scroll}px wide in a ${width}px window`);
}

/**
 * Every control of `scope` (buttons, fields, links, labels) that is displayed lies wholly inside
 * the window and inside every box that clips or scrolls it sideways: nothing to find by scrolling
 * a table, nothing cut.
 */
async function noClippedControls(what, scope = '#view') {
  const clipped = await page.evaluate((scope) => {
    const out = [];
    const width = window.innerWidth;
    for (const root of document.querySelectorAll(scope)) {
      for (const el of root.querySelectorAll('button, input, select, textarea, a[href], label')) {
        if (!el.getClientRects().length) continue;
        const r = el.getBoundingClientRect();
        if (r.width === 0 && r.height === 0) continue;
        const name = `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''} "${(el.innerText || el.value || el.getAttribute('aria-label') || '').trim().slice(0, 40)}"`;
        if (r.left < -0.5 || r.right > width + 0.5) {
          out.push(`${name}: ${Math.round(r.left)}–${Math.round(r.right)} in a ${width}px window`);
          continue;
        }
        for (let box = el.parentElement; box && box !== document.body; box = box.parentElement) {
          if (getComputedStyle(box).overflowX === 'visible') continue;
          const b = box.getBoundingClientRect();
          if (r.left < b.left - 0.5 || r.right > b.right + 0.5) {
            out.push(`${name}: cut by ${box.tagName.toLowerCase()}.${box.className}`);
            break;
          }
        }
      }
    }
    return out;
  }, scope);
  assert.deepEqual(clipped, [], `${what}: controls out of sight`);
}

const LAUNCH = {
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
};

/** Fails the current test on console errors, page errors, failed requests and other origins. */
function watch(target) {
  target.on('console', (msg) => {
    if (msg.type() === 'error') problem(`console.error: ${msg.text()}`);
  });
  target.on('pageerror', (error) => problem(`page error: ${error.message}`));
  target.on('requestfailed', (request) => problem(`request failed: ${request.method()} ${request.url()} (${request.failure()?.errorText})`));
  // Nothing but Maestro itself: any other origin is a failure too.
  target.on('request', (request) => {
    const url = request.url();
    if (!Object.values(URLS).some((base) => url.startsWith(base)) && !url.startsWith('data:') && !url.startsWith('about:')) {
      problem(`request to another origin: ${url}`);
    }
  });
}

before(async () => {
  upstream = await startUpstream();
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'maestro-console-chromium-'));
  // The browser itself is English (navigator.language en-US): the Chinese pages come from the
  // stored choice, not from the browser.
  context = await chromium.launchPersistentContext(userDir, {
    ...LAUNCH,
    viewport: { width: 1280, height: 900 },
    timezoneId: 'UTC',
    locale: 'en-US',
  });
  page = context.pages()[0] || (await context.newPage());
  // A loaded machine (CI beside other builds) may set a longer wait: MAESTRO_CONSOLE_TIMEOUT_MS.
  page.setDefaultTimeout(Number(process.env.MAESTRO_CONSOLE_TIMEOUT_MS) || 10_000);
  watch(page);
});

/** A test whose failure leaves a screenshot of the page as it was, next to the others. */
function uiTest(name, fn) {
  test(name, async (t) => {
    try {
      await fn();
    } catch (error) {
      const file = `failed-${t.fullName.replace(/:.*$/, '').replace(/\W+/g, '-')}.png`;
      await page?.screenshot({ path: path.join(ARTIFACTS, file), fullPage: true }).catch(() => {});
      throw error;
    }
  });
}

afterEach(() => {
  const seen = problems.splice(0);
  assert.deepEqual(seen, [], 'no console error, page error or failed request');
});

after(async () => {
  await context?.close();
  upstream?.close();
  if (userDir) fs.rmSync(userDir, { recursive: true, force: true });
});

test('i18n: both dictionaries hold the same ids with the same placeholders, and every id the console names', () => {
  const en = messages.en;
  const zh = messages['zh-CN'];
  assert.deepEqual(Object.keys(zh).sort(), Object.keys(en).sort());
  const placeholders = (s) => (s.match(/\{\w+\}/g) || []).sort();
  for (const id of Object.keys(en)) assert.deepEqual(placeholders(zh[id]), placeholders(en[id]), id);
  // Written the same in both languages on purpose: a sign and a number.
  assert.deepEqual(Object.keys(en).filter((id) => en[id] === zh[id]), ['fmt.atMost']);
  // Every id named literally in the console's files (the others are built from API values, e.g.
  // `status.${status}`, and the scenario meets them).
  const dir = new URL('../../functions/admin/console/', import.meta.url);
  const source = fs.readdirSync(dir).filter((f) => /\.(js|html)$/.test(f) && f !== 'i18n.js')
    .map((f) => fs.readFileSync(new URL(f, dir), 'utf8')).join('\n');
  const named = [...source.matchAll(/\b(?:t|tParts)\('([\w.]+)'|data-i18n(?:-[\w-]+)?="([\w.]+)"/g)].map((m) => m[1] || m[2]);
  assert.ok(named.length > 150, `${named.length} ids`);
  assert.deepEqual(named.filter((id) => !(id in en)), []);
});

for (const lang of ['en', 'zh-CN']) {
  describe(lang, () => scenario(lang));
}

function scenario(lang) {
  const BASE = URLS[lang];
  const form = FORMS[lang];
  /** A console message in this suite's language, as the page must show it. */
  const tr = (id, params) => {
    assert.ok(id in messages.en && id in messages[lang], `no message ${id} in ${lang}`);
    return translate(lang, id, params);
  };
  /** The part of a message before `{name}` is filled in. */
  const prefixOf = (id, name, params = {}) => tr(id, { ...params, [name]: '\u0000' }).split('\u0000')[0];
  const shot = (name) => page.screenshot({ path: path.join(ARTIFACTS, `${name}-${lang}.png`), fullPage: true });

  async function adminApi(pathname, options = {}) {
    const response = await fetch(`${BASE}${pathname}`, {
      ...options,
      headers: { Authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', ...(options.headers || {}) },
    });
    const body = await response.json();
    assert.ok(response.ok, `${pathname}: ${response.status} ${JSON.stringify(body)}`);
    return body;
  }

  uiTest('sign-in: a caller token is refused, the #token= link signs in and leaves the address bar', async () => {
    // The language is chosen before the console loads, as the switch would have left it (from
    // a blank page of the console's origin, served here).
    const blank = `${BASE}/admin/blank-for-tests`;
    await page.route(blank, (route) => route.fulfill({ contentType: 'text/html', body: '<!doctype html><link rel="icon" href="data:,">' }));
    await page.goto(blank);
    await page.evaluate((l) => localStorage.setItem('maestro.lang', l), lang);
    await page.unroute(blank);
    await page.goto(`${BASE}/admin/`);
    await page.locator('#signin-form').waitFor();
    assert.equal(await page.locator('#shell').isVisible(), false);
    assert.equal(await page.getAttribute('html', 'lang'), lang);
    assert.equal(await page.title(), tr('app.title'));
    assert.equal(await text('#signin-form button[type=submit]'), tr('signin.submit'));
    assert.equal(await page.getAttribute('#signin-token', 'placeholder'), tr('signin.tokenPlaceholder'));
    assert.equal(await page.locator('#signin-lang').inputValue(), lang);

    await expecting([/status of 403/], async () => {
      await page.fill('#signin-token', CALLER);
      await page.click('#signin-form button[type=submit]');
      await page.locator('#signin-error').waitFor();
      await idle();
    });
    const refused = await text('#signin-error');
    assert.ok(refused.startsWith(prefixOf('signin.notAdmin', 'message')), refused);
    assert.match(refused, /maestro:admin/, 'the server’s message follows, as it came');
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused token is not kept');

    await page.goto('about:blank');
    await page.goto(`${BASE}/admin/#token=${ADMIN}`);
    await page.locator('[data-kpi="requests"]').waitFor();
    assert.ok(!page.url().includes('token='), `the token left the address bar: ${page.url()}`);
    assert.ok(page.url().endsWith('/admin/#/dashboard'), page.url());
    assert.equal(await page.evaluate(() => sessionStorage.getItem('maestro.admin.token')), ADMIN);
    assert.equal(await text('[data-kpi="requests"] [data-period="today"]'), '0');
    // The keyboard's focus on the dark sidebar: a ring of 3:1 or more against it, inside the link.
    await page.locator('.nav a[data-view="logs"]').focus();
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Tab');
    const ring = await page.evaluate(() => {
      const el = document.activeElement;
      const style = getComputedStyle(el);
      const rgb = (c) => c.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number);
      const lum = ([r, g, b]) => [r, g, b].map((v) => v / 255).map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4))
        .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
      const [a, b] = [lum(rgb(style.outlineColor)), lum(rgb(getComputedStyle(document.querySelector('.topbar')).backgroundColor))];
      return { view: el.dataset.view, width: style.outlineWidth, offset: style.outlineOffset, ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05) };
    });
    assert.equal(ring.view, 'logs');
    assert.equal(ring.width, '2px');
    assert.ok(ring.ratio >= 3, `focus ring contrast ${ring.ratio.toFixed(2)}:1`);
    assert.ok(parseFloat(ring.offset) <= 0, 'drawn inside the link, where nothing clips it');
    // A new install: its first steps, none done yet, and no "every key is normal" without keys.
    const steps = page.locator('[data-section="getting-started"]');
    assert.deepEqual(await steps.locator('[data-step]').evaluateAll((els) => els.map((e) => [e.dataset.step, e.dataset.done])),
      [['provider', 'false'], ['models', 'false'], ['apikey', 'false'], ['call', 'false']]);
    assert.equal(await steps.locator('[data-done]').first().innerText(), tr('dashboard.steps.progress', { done: '0', count: '4' }));
    assert.deepEqual(await page.locator('[data-section="key-health"] td.empty').allInnerTexts(), [tr('dashboard.noKeys'), tr('dashboard.noKeys')]);
    assert.equal(await text('.charts .empty'), tr('dashboard.trendEmpty'));
    await noClippedControls('a new dashboard at 1280');
    await shot('dashboard-new-1280');
    await page.setViewportSize({ width: 390, height: 844 });
    await noClippedControls('a new dashboard at 390');
    await noClippedControls('navigation at 390', '.topbar');
    await shot('dashboard-new-390');
    await page.setViewportSize({ width: 1280, height: 900 });
    assert.equal(await page.title(), tr('app.viewTitle', { view: tr('nav.dashboard') }));
    assert.equal(await text('.nav a[data-view="logs"]'), tr('nav.logs'));

    await page.click('#signout');
    await page.locator('#signin-form').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);

    await page.fill('#signin-token', `Bearer ${ADMIN}`);
    await page.click('#signin-form button[type=submit]');
    await page.locator('[data-kpi="requests"]').waitFor();
    assert.equal(await page.inputValue('#signin-token'), '', 'the pasted token leaves the form');
  });

  uiTest('providers: add one and two keys; secrets are shown masked only; validate; sync models', async () => {
    await view('providers');
    await page.locator('section[data-provider="demo"]').waitFor();
    assert.equal(await text('.page-header h1'), tr('providers.title'));
    await page.getByRole('button', { name: tr('providers.add'), exact: true }).click();
    await page.fill('#f-provider_code', 'fakeup');
    await page.fill('#f-provider_name', 'Fake upstream');
    await page.selectOption('#f-kind', 'openai_compatible');
    await page.fill('#f-base_url', `http://127.0.0.1:${upstream.address().port}/v1`);
    await page.click('dialog button[type=submit]');
    const card = page.locator('section[data-provider="fakeup"]');
    await card.waitFor();
    assert.match(await card.innerText(), /Fake upstream/);

    // The same code again: the dialog stays, with what was typed and the code field marked.
    await page.getByRole('button', { name: tr('providers.add'), exact: true }).click();
    const again = page.locator('dialog[data-dialog="provider"]');
    await page.fill('#f-provider_code', 'fakeup');
    await page.fill('#f-provider_name', 'Fake upstream twice');
    await page.fill('#f-base_url', `http://127.0.0.1:${upstream.address().port}/v1`);
    await expecting([/status of 409/], async () => {
      await again.locator('button[type=submit]').click();
      await again.locator('[data-error]', { hasText: 'A provider `fakeup` exists already.' }).waitFor();
      await idle();
    });
    assert.equal(await page.getAttribute('#f-provider_code', 'aria-invalid'), 'true');
    assert.equal(await page.inputValue('#f-provider_name'), 'Fake upstream twice');
    assert.ok(!(await page.locator('#toast').innerText()).includes(tr('api.stale')), 'nothing said about a version');
    await again.getByRole('button', { name: tr('common.cancel'), exact: true }).click();
    await again.waitFor({ state: 'detached' });

    for (const [name, secret, rpd] of [['primary', PRIMARY_SECRET, '2'], ['spare', SPARE_SECRET, '']]) {
      await card.getByRole('button', { name: tr('providers.addKey'), exact: true }).click();
      await page.locator(`dialog[aria-label="${tr('keys.addTitle', { provider: 'Fake upstream' })}"]`).waitFor();
      await page.fill('#f-key_name', name);
      await page.fill('#f-api_key', secret);
      if (rpd) await page.fill('#f-rate_limit_rpd', rpd);
      await page.click('dialog button[type=submit]');
      await card.locator(`tr[data-key="fakeup-${name}"]`).waitFor();
      assert.equal(await page.locator('dialog').count(), 0, 'the dialog, and the secret in it, is gone');
    }
    // `<prefix>…<last 4>`, as the API masks keys.
    assert.equal(await card.locator('tr[data-key="fakeup-primary"] [data-masked]').innerText(), 'sk-…3a9c');
    assert.equal(await card.locator('tr[data-key="fakeup-spare"] [data-masked]').innerText(), 'sk-…42d1');
    assert.match(await card.locator('tr[data-key="fakeup-primary"]').innerText(), new RegExp(escape(tr('limit.rpd', { value: '2' }))));
    await noSecretOnPage();

    const validate = (key) => card.locator(`tr[data-key="fakeup-${key}"]`).getByRole('button', { name: tr('providers.validate'), exact: true });
    await validate('primary').click();
    await card.locator('.outcome .notice-ok').waitFor();
    assert.match(await card.locator('.outcome').innerText(), new RegExp(escape(tr('providers.valid', { name: 'primary', count: '2' }))));

    await validate('spare').click();
    await card.locator('.outcome .notice-error').waitFor();
    assert.match(await card.locator('.outcome').innerText(), inOrder(
      prefixOf('providers.invalid', 'message', { name: 'spare', http: tr('providers.http', { status: 401 }) }), 'Incorrect API key'));
    await card.locator('tr[data-key="fakeup-spare"] .badge[data-status="invalid"]', { hasText: tr('status.invalid') }).waitFor();

    await card.getByRole('button', { name: tr('providers.syncModels'), exact: true }).click();
    await card.locator('.outcome .notice-info').waitFor();
    const report = await card.locator('.outcome').innerText();
    assert.ok(report.includes(tr('providers.syncListed', { count: '2' }).trim()), report);
    const names = tr('common.namesSuffix', { names: ['fake-small', 'fake-large'].join(tr('common.listSeparator')) });
    assert.equal(await card.locator('.outcome [data-added]').innerText(), tr('providers.syncAdded', { count: '2', names }));
    // The card is drawn again once the list is read again after the sync.
    await card.locator('[data-field="models"]', { hasText: tr('providers.meta.modelsValue', { active: '0', total: '2' }) }).waitFor();
    await noSecretOnPage();
  });

  uiTest('models: price demo/echo in dollars per million tokens and activate a synced model', async () => {
    await view('models');
    const echo = page.locator('tr[data-model="demo/echo"]');
    await echo.waitFor();
    await echo.getByRole('button', { name: tr('common.edit'), exact: true }).click();
    await page.locator(`dialog[aria-label="${tr('models.editTitle', { id: 'demo/echo' })}"]`).waitFor();
    await page.fill('#f-input_price', '3');
    await page.fill('#f-output_price', '15');
    await page.click('dialog button[type=submit]');
    await page.locator('#toast', { hasText: tr('models.saved', { id: 'demo/echo' }) }).waitFor();
    await echo.locator('[data-prices]', { hasText: `${form.money('3.00')} / ${form.money('15.00')}` }).waitFor();
    const [model] = (await adminApi('/api/admin/ai-models?provider=demo')).data;
    assert.deepEqual([model.prices.input_price, model.prices.output_price], [3_000_000, 15_000_000]);

    await page.selectOption('#models-provider', 'fakeup');
    const small = page.locator('tr[data-model="fakeup/fake-small"]');
    await small.getByRole('button', { name: tr('common.activate'), exact: true }).click();
    // Unpriced: asked first, and said why.
    const check = page.getByRole('dialog', { name: tr('models.confirmTitle'), exact: true });
    await check.waitFor();
    assert.deepEqual(await check.locator('li').allInnerTexts(), [tr('models.risk.unpriced', { id: 'fakeup/fake-small' })]);
    await check.getByRole('button', { name: tr('common.activate'), exact: true }).click();
    await small.getByRole('button', { name: tr('common.deactivate'), exact: true }).waitFor();
    assert.equal(await small.locator('.badge[data-active="true"]').innerText(), tr('state.active'));
    assert.equal(await page.locator('tr[data-model]').count(), 2, 'the provider filter keeps fakeup only');
  });

  uiTest('models: "0,15" is $0.15 with a preview; a 10× change and an unpriced activation ask first; bulk prices', async () => {
    await view('models');
    await page.selectOption('#models-provider', '');
    const echo = page.locator('tr[data-model="demo/echo"]');
    await echo.getByRole('button', { name: tr('common.edit'), exact: true }).click();
    const dialog = page.locator('dialog[data-dialog="model"]');
    await dialog.waitFor();
    const preview = dialog.locator('[data-preview]');
    // What it holds now ($3 / $15), then a comma as the decimal sign.
    assert.equal(await preview.innerText(), tr('models.preview', {
      input: form.money('3.00'), output: form.money('15.00'), call: form.money('0.0105'), tokensIn: '1,000', tokensOut: '500',
    }));
    await page.fill('#f-input_price', '0,15');
    await page.fill('#f-output_price', '0,6');
    assert.equal(await page.inputValue('#f-input_price'), '0,15', 'the field keeps what was typed');
    // 1,000 × $0.15 + 500 × $0.60 per million = $0.00045.
    assert.equal(await preview.innerText(), tr('models.preview', {
      input: form.money('0.15'), output: form.money('0.60'), call: form.money('0.00045'), tokensIn: '1,000', tokensOut: '500',
    }));
    // "1,500": a thousand or a decimal? Said, the field marked, nothing sent.
    await page.fill('#f-output_price', '1,500');
    await dialog.locator('button[type=submit]').click();
    await dialog.locator('[data-error]', { hasText: tr('models.error.ambiguous', { value: '1,500' }) }).waitFor();
    assert.equal(await page.getAttribute('#f-output_price', 'aria-invalid'), 'true');
    await page.fill('#f-output_price', '0,6');
    await noClippedControls('model editor at 1280', 'dialog');
    await page.screenshot({ path: path.join(ARTIFACTS, `model-editor-1280-${lang}.png`) });

    // $3 → $0.15 is 20× and $15 → $0.60 25×: asked first; "Cancel" saves nothing and keeps the form.
    await dialog.locator('button[type=submit]').click();
    const check = page.getByRole('dialog', { name: tr('models.confirmTitle'), exact: true });
    await check.waitFor();
    const lines = await check.locator('li').allInnerTexts();
    assert.deepEqual(lines, [
      tr('models.risk.jump', { id: 'demo/echo', field: tr('models.price.input_price'), before: form.money('3.00'), after: form.money('0.15'), factor: '20' }),
      tr('models.risk.jump', { id: 'demo/echo', field: tr('models.price.output_price'), before: form.money('15.00'), after: form.money('0.60'), factor: '25' }),
    ]);
    await check.getByRole('button', { name: tr('common.cancel'), exact: true }).click();
    await check.waitFor({ state: 'detached' });
    assert.equal(await page.inputValue('#f-input_price'), '0,15', 'the form is still there');
    let [echoModel] = (await adminApi('/api/admin/ai-models?provider=demo')).data;
    assert.equal(echoModel.prices.input_price, 3_000_000, 'nothing saved');
    await dialog.locator('button[type=submit]').click();
    await check.getByRole('button', { name: tr('common.save'), exact: true }).click();
    await page.locator('#toast', { hasText: tr('models.saved', { id: 'demo/echo' }) }).waitFor();
    [echoModel] = (await adminApi('/api/admin/ai-models?provider=demo')).data;
    assert.deepEqual([echoModel.prices.input_price, echoModel.prices.output_price], [150_000, 600_000]);
    // Back to $3 / $15 (the calls below are costed at them).
    await adminApi('/api/admin/ai-models/demo%2Fecho', {
      method: 'PUT', body: JSON.stringify({ version: echoModel.version, prices: { input_price: 3_000_000, output_price: 15_000_000 } }),
    });

    // An unpriced model: activating it asks; "Cancel" leaves it inactive.
    await page.selectOption('#models-provider', 'fakeup');
    const large = page.locator('tr[data-model="fakeup/fake-large"]');
    await large.locator('[data-prices] .badge', { hasText: tr('models.unpriced') }).waitFor();
    await large.getByRole('button', { name: tr('common.activate'), exact: true }).click();
    await check.waitFor();
    assert.deepEqual(await check.locator('li').allInnerTexts(), [tr('models.risk.unpriced', { id: 'fakeup/fake-large' })]);
    await check.getByRole('button', { name: tr('common.cancel'), exact: true }).click();
    await check.waitFor({ state: 'detached' });
    const fakeup = async () => (await adminApi('/api/admin/ai-models?provider=fakeup')).data;
    assert.equal((await fakeup()).find((m) => m.id === 'fakeup/fake-large').is_active, false);

    // Both fakeup models selected, priced at once ($0.50 / $1.50), no question: nothing was priced.
    await page.check('#models-select-all');
    const bar = page.getByRole('region', { name: tr('models.bulk.label'), exact: true });
    assert.equal(await bar.locator('[data-selected]').innerText(), tr('models.bulk.count', { count: '2' }));
    await noClippedControls('models with a selection at 1280');
    await bar.getByRole('button', { name: tr('models.bulk.prices'), exact: true }).click();
    const bulk = page.locator('dialog[data-dialog="bulk-prices"]');
    await bulk.waitFor();
    await page.fill('#f-input_price', '0,5');
    await page.fill('#f-output_price', '1.5');
    assert.equal(await bulk.locator('[data-preview]').innerText(), tr('models.preview', {
      input: form.money('0.50'), output: form.money('1.50'), call: form.money('0.00125'), tokensIn: '1,000', tokensOut: '500',
    }));
    await bulk.locator('button[type=submit]').click();
    await page.locator('#toast', { hasText: tr('models.bulk.saved', { count: '2' }) }).waitFor();
    await bulk.waitFor({ state: 'detached' });
    for (const m of await fakeup()) {
      assert.deepEqual([m.id, m.prices.input_price, m.prices.output_price], [m.id, 500_000, 1_500_000]);
    }
    assert.equal((await fakeup()).find((m) => m.id === 'fakeup/fake-large').is_active, false);
    await page.setViewportSize({ width: 390, height: 844 });
    await noClippedControls('models at 390');
    await noHorizontalOverflow('models at 390');
    await shot('models-bulk-390');
    await page.setViewportSize({ width: 1280, height: 900 });
    await bar.getByRole('button', { name: tr('models.bulk.clear'), exact: true }).click();
    await bar.waitFor({ state: 'hidden' });
  });

  uiTest('keys: deactivate one; a stale version is reloaded and said so', async () => {
    await view('providers');
    const card = page.locator('section[data-provider="fakeup"]');
    const spare = card.locator('tr[data-key="fakeup-spare"]');
    await spare.getByRole('button', { name: tr('common.deactivate'), exact: true }).click();
    await spare.getByRole('button', { name: tr('common.activate'), exact: true }).waitFor();
    assert.equal(await spare.locator('.badge[data-active="false"]').innerText(), tr('state.inactive'));
    const keys = (await adminApi('/api/admin/ai-providers/fakeup/keys')).data;
    assert.equal(keys.find((k) => k.id === 'fakeup-spare').is_active, false);

    // Someone else changes the primary key after the page read it.
    const primary = keys.find((k) => k.id === 'fakeup-primary');
    await adminApi('/api/admin/ai-providers/keys/fakeup-primary', { method: 'PUT', body: JSON.stringify({ version: primary.version, priority: 5 }) });
    await expecting([/status of 409/], async () => {
      await card.locator('tr[data-key="fakeup-primary"]').getByRole('button', { name: tr('common.deactivate'), exact: true }).click();
      await page.locator('#toast', { hasText: tr('api.stale') }).waitFor();
      // The server's words, then the console's.
      assert.match(await text('#toast'), inOrder('fakeup-primary was changed by someone else', tr('api.stale')));
      await idle();
    });
    const row = page.locator('section[data-provider="fakeup"] tr[data-key="fakeup-primary"]');
    await row.locator('[data-field="priority"]', { hasText: /^5$/ }).waitFor();
    await row.locator('.badge[data-active="true"]').waitFor(); // the stale click changed nothing
  });

  uiTest('dashboard: exactly the calls made, at 1280 and 390 pixels', async () => {
    const call = (model) => fetch(`${BASE}/v1/chat/completions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${CALLER}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: PROMPT }] }),
    });
    for (let i = 0; i < SUCCESSES; i++) {
      const r = await call('demo/echo');
      assert.equal(r.status, 200);
      const { usage } = await r.json();
      assert.deepEqual([usage.prompt_tokens, usage.completion_tokens], [PROMPT_TOKENS, COMPLETION_TOKENS]);
    }
    for (let i = 0; i < FAILURES; i++) {
      const r = await call('fakeup/fake-small');
      assert.equal(r.status, 400, 'the upstream refusal reaches the caller');
      await r.body?.cancel();
    }
    // Calls are recorded off the request path: wait until the aggregator has them all.
    for (let i = 0; ; i++) {
      const dash = await adminApi('/api/admin/ai-stats/dashboard');
      if (dash.today.usage.requests === SUCCESSES + FAILURES) break;
      assert.ok(i < 100, `the stats hold ${dash.today.usage.requests} calls`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    await view('dashboard');
    await page.getByRole('button', { name: tr('dashboard.refresh'), exact: true }).click();
    await idle();
    await page.locator('figure[data-chart="cost"] canvas').waitFor();
    const kpi = (name, period) => text(`[data-kpi="${name}"] [data-period="${period}"]`);
    for (const period of ['today', 'last_7_days', 'last_30_days']) {
      assert.equal(await kpi('requests', period), '9', period);
      assert.equal(await kpi('success_rate', period), '77.8%', period); // 7 of 9
      assert.equal(await kpi('tokens', period), '119', period); // 7 × (6 + 11)
      assert.equal(await kpi('cost', period), form.money('0.001281'), period);
      assert.match(await kpi('p50', period), form.latency, period);
      assert.match(await kpi('p95', period), form.latency, period);
    }
    assert.equal(COST_MICROS, 1281);
    assert.equal(await text('[data-kpi="success_rate"] .kpi-label'), tr('dashboard.kpi.success_rate'));
    assert.equal(await text('[data-kpi="requests"] .kpi-note'), tr('dashboard.todayNote', { note: tr('dashboard.kpi.requestsNote', { count: '2' }) }));
    assert.match(await text('[data-kpi="tokens"] .kpi-note'), new RegExp(escape(tr('dashboard.kpi.tokensNote', { input: '42', output: '77' }))));
    assert.match(await text('[data-kpi="cost"] .kpi-note'), new RegExp(escape(tr('fmt.micros', { value: '1,281' }))));

    const top = await page.locator('[data-section="top-models"] tbody tr').allInnerTexts();
    assert.deepEqual(top.map((row) => row.split('\t').map((c) => c.trim())), [
      ['demo/echo', '7', '0', '119', form.money('0.001281')],
      ['fakeup/fake-small', '2', '2', '0', form.money('0.00')],
    ]);
    const health = page.locator('[data-section="key-health"]');
    const near = await health.locator('table').first().locator('tbody tr').allInnerTexts();
    assert.equal(near.length, 1, near.join('\n'));
    assert.match(near[0], inOrder('primary', 'fakeup', 'rpd', '2 / 2', '100%'));
    const notNormal = await health.locator('table').nth(1).locator('tbody tr').allInnerTexts();
    assert.equal(notNormal.length, 1, notNormal.join('\n'));
    assert.match(notNormal[0], inOrder('spare', 'fakeup', tr('status.invalid'), tr('state.inactive'), tr('dashboard.untilValidated')));
    const legend = await page.locator('figure[data-chart="requests"] .u-legend').innerText();
    assert.match(legend, new RegExp(escape(tr('dashboard.chartDay'))));
    assert.match(legend, /demo/);
    assert.match(legend, /fakeup/);

    // The first steps: a provider key, a priced model of it and calls; no API key for callers yet.
    assert.deepEqual(await page.locator('[data-section="getting-started"] [data-step]').evaluateAll((els) => els.map((e) => [e.dataset.step, e.dataset.done])),
      [['provider', 'true'], ['models', 'true'], ['apikey', 'false'], ['call', 'true']]);
    await noClippedControls('dashboard at 1280');
    await shot('dashboard-1280');
    await noHorizontalOverflow('dashboard at 1280');
    for (const name of ['providers', 'models', 'logs']) {
      await view(name);
      await noHorizontalOverflow(`${name} at 1280`);
      await shot(`${name}-1280`);
    }
    await view('dashboard');

    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300); // the charts follow their box's new width
    await noHorizontalOverflow('dashboard at 390');
    const chartWidth = await page.locator('figure[data-chart="cost"] canvas').evaluate((c) => c.getBoundingClientRect().width);
    assert.ok(chartWidth <= 390, `the chart is ${chartWidth}px wide`);
    await shot('dashboard-390');
    for (const name of ['providers', 'models', 'logs']) {
      await view(name);
      await noHorizontalOverflow(`${name} at 390`);
      await shot(`${name}-390`);
    }
    await page.setViewportSize({ width: 1280, height: 900 });
    await noSecretOnPage();
  });

  uiTest('logs: filter, page, and a call’s details without secrets or prompt text', async () => {
    await view('logs');
    const rows = page.locator('[data-request]');
    const apply = () => page.getByRole('button', { name: tr('logs.apply'), exact: true }).click();
    const settle = async (count) => {
      await idle();
      await page.locator('.pager').waitFor();
      assert.equal(await rows.count(), count, (await rows.allInnerTexts()).join('\n'));
    };
    await settle(9);
    await page.locator('[data-summary]', { hasText: tr('logs.count', { count: '9' }) }).waitFor();
    const when = rows.first().locator('[data-ts]');
    const shown = await when.innerText();
    assert.match(shown, form.dateTime);
    assert.equal(shown, await page.evaluate(([l, ts, o]) => new Intl.DateTimeFormat(l, o).format(ts),
      [lang, Number(await when.getAttribute('data-ts')), DATE_TIME]));

    await page.selectOption('#logs-status', 'error');
    await apply();
    await settle(2);
    for (const row of await rows.allInnerTexts()) assert.match(row, /400[\s\S]*fakeup\/fake-small[\s\S]*console-caller/);
    assert.ok(page.url().endsWith('#/logs?status=error'), page.url());

    // Partial and ignoring case: "ECH" finds demo/echo, "CALLER" the caller.
    await page.selectOption('#logs-status', 'success');
    await page.fill('#logs-model_contains', 'ECH');
    await page.fill('#logs-user_contains', 'CALLER');
    await apply();
    await settle(7);
    for (const row of await rows.allInnerTexts()) assert.match(row, inOrder('200', 'demo/echo', '6 / 11', form.money('0.000183')));
    await page.locator('[data-summary]', { hasText: tr('logs.count', { count: '7' }) }).waitFor();

    // Back: the filters before, from the address; Forward: these again.
    await page.goBack();
    await settle(2);
    assert.equal(await page.inputValue('#logs-status'), 'error');
    assert.equal(await page.inputValue('#logs-model_contains'), '');
    await page.goForward();
    await settle(7);
    assert.equal(await page.inputValue('#logs-model_contains'), 'ECH');
    // The address alone (a shared link) opens the same view.
    const shared = page.url();
    await page.goto('about:blank');
    await page.goto(shared);
    await settle(7);
    assert.equal(await page.inputValue('#logs-user_contains'), 'CALLER');
    assert.equal(await page.inputValue('#logs-status'), 'success');

    // A preset range: the last 15 minutes hold every call of this test.
    await page.getByRole('button', { name: tr('logs.reset'), exact: true }).click();
    await settle(9);
    await page.selectOption('#logs-range', '15m');
    assert.equal(await page.locator('#logs-from').isVisible(), false, 'a preset needs no days');
    await apply();
    await settle(9);
    assert.ok(page.url().includes('range=15m'), page.url());
    await page.selectOption('#logs-range', 'custom');
    await page.fill('#logs-to', '2020-01-01');
    await apply();
    await settle(0);
    assert.equal(await text('#view td.empty'), tr('logs.empty'));
    await page.locator('[data-summary]', { hasText: tr('logs.count', { count: '0' }) }).waitFor();

    await page.getByRole('button', { name: tr('logs.reset'), exact: true }).click();
    await settle(9);
    await page.selectOption('#logs-limit', '5');
    await apply();
    await settle(5);
    const older = page.locator('.pager').getByRole('button', { name: tr('logs.older'), exact: true });
    await older.click();
    await settle(4);
    assert.equal(await text('.pager [data-page]'), tr('logs.pageRange', { page: '2', first: '6', last: '9' }));
    assert.equal(await older.isDisabled(), true);
    await page.locator('.pager').getByRole('button', { name: tr('logs.newest'), exact: true }).click();
    await settle(5);

    // Export what the filters find: the two failures, as CSV, nothing secret in it.
    await page.selectOption('#logs-status', 'error');
    await apply();
    await settle(2);
    const [file] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: tr('logs.export'), exact: true }).click(),
    ]);
    assert.match(file.suggestedFilename(), /^maestro-calls-\d{4}-\d{2}-\d{2}\.csv$/);
    const csv = fs.readFileSync(await file.path(), 'utf8');
    const lines = csv.trimEnd().split('\r\n');
    assert.equal(lines.length, 3, csv);
    assert.ok(lines[0].startsWith('request_id,time_utc,ts_ms,user_id,provider,model,key_id,'), lines[0]);
    const shownIds = await rows.evaluateAll((els) => els.map((e) => e.dataset.request));
    assert.deepEqual(lines.slice(1).map((l) => l.split(',')[0]), shownIds, 'the same calls, newest first');
    for (const line of lines.slice(1)) {
      assert.match(line, /,console-caller,fakeup,fake-small,fakeup-primary,,,chat,false,error,400,fake_refusal,/);
    }
    for (const secret of [PRIMARY_SECRET, SPARE_SECRET, ADMIN, PROMPT]) assert.ok(!csv.includes(secret), 'no secret in the export');
    await page.locator('#toast', { hasText: tr('logs.exported', { name: file.suggestedFilename() }) }).waitFor();

    await rows.first().click();
    const dialog = page.getByRole('dialog', { name: tr('logs.details'), exact: true });
    await dialog.waitFor();
    const details = await dialog.innerText();
    assert.match(details, new RegExp(`${escape(tr('logs.detail.provider'))}\\s+fakeup`));
    assert.match(details, new RegExp(escape(tr('logs.detail.statusValue', { status: tr('outcome.error'), code: 400 }))));
    assert.match(details, /The fake upstream refuses every chat request/);
    assert.match(details, new RegExp(`${escape(tr('logs.detail.key'))}\\s+fakeup-primary`));
    await page.screenshot({ path: path.join(ARTIFACTS, `log-details-1280-${lang}.png`) });
    await noSecretOnPage();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });

    // A call by its request id, whatever the filters, and as a link.
    const id = shownIds[1];
    await page.fill('#logs-request', id);
    await page.getByRole('button', { name: tr('logs.lookup.find'), exact: true }).click();
    await dialog.locator(`[data-field="requestId"]`, { hasText: id }).waitFor();
    await page.keyboard.press('Escape');
    await expecting([], async () => {
      await page.fill('#logs-request', 'req_nothing');
      await page.getByRole('button', { name: tr('logs.lookup.find'), exact: true }).click();
      await page.locator('#toast', { hasText: tr('logs.lookup.none', { id: 'req_nothing' }) }).waitFor();
    });
    await page.goto(`${BASE}/admin/#/logs?request=${id}`);
    await dialog.locator(`[data-field="requestId"]`, { hasText: id }).waitFor();
    await page.keyboard.press('Escape');
    await idle();
    await noClippedControls('logs at 1280');
    await page.setViewportSize({ width: 390, height: 844 });
    await noClippedControls('logs at 390');
    await noHorizontalOverflow('logs at 390');
    await shot('logs-filtered-390');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  uiTest('keys: a real test call, the last error and when, test all keys, validate from the dashboard, delete a key and a provider', async () => {
    await view('providers');
    const card = page.locator('section[data-provider="fakeup"]');
    const row = (name) => card.locator(`tr[data-key="fakeup-${name}"]`);
    const outcome = card.locator('.outcome [data-test]');
    // The primary key's day is full (rpd 2): Maestro does not call, and says so.
    await row('primary').getByRole('button', { name: tr('providers.test'), exact: true }).click();
    await outcome.waitFor();
    assert.equal(await outcome.getAttribute('data-test'), 'at_limit');
    assert.ok((await outcome.innerText()).startsWith(prefixOf('providers.test.at_limit', 'message', { name: 'primary' })));
    const primary = (await adminApi('/api/admin/ai-providers/fakeup/keys')).data.find((k) => k.id === 'fakeup-primary');
    await adminApi('/api/admin/ai-providers/keys/fakeup-primary', { method: 'PUT', body: JSON.stringify({ version: primary.version, rate_limit_rpd: null }) });
    await page.reload();
    await card.waitFor();
    await idle();
    await row('primary').getByRole('button', { name: tr('providers.test'), exact: true }).click();
    await outcome.filter({ hasNotText: prefixOf('providers.test.at_limit', 'message', { name: 'primary' }) }).waitFor();
    assert.equal(await outcome.getAttribute('data-test'), 'ok');
    // 14 tokens in at $0.50 and 1 out at $1.50 per million: 8.5 micro-USD, billed as 9.
    const [before, after] = tr('providers.test.ok', { name: 'primary', model: 'fakeup/fake-small', latency: '\u0000', cost: form.money('0.000009') }).split('\u0000');
    const said = await outcome.innerText();
    assert.ok(said.startsWith(before) && said.endsWith(after), said);
    // Recorded like any call: a key_test log under the admin, costed.
    let logged;
    for (let i = 0; i < 100 && !logged; i++) {
      logged = (await adminApi('/api/admin/ai-stats/logs?limit=5')).data.find((e) => e.request_type === 'key_test');
      if (!logged) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.deepEqual([logged.key_id, logged.model, logged.status, logged.cost_micros, logged.user_id],
      ['fakeup-primary', 'fake-small', 'success', 9, 'console-admin']);

    // The spare key is refused: its status and the provider's words, with when.
    await row('spare').getByRole('button', { name: tr('providers.test'), exact: true }).click();
    await card.locator('.outcome [data-test="invalid"]').waitFor();
    const lastError = row('spare').locator('[data-last-error]');
    await lastError.waitFor();
    assert.equal(await lastError.innerText(), tr('providers.lastError', { message: 'HTTP 401: Incorrect API key provided.', when: await page.evaluate(() => new Intl.RelativeTimeFormat(document.documentElement.lang, { style: 'short', numeric: 'auto' }).format(0, 'second')) }));
    const [spare] = (await adminApi('/api/admin/ai-providers/fakeup/keys')).data.filter((k) => k.id === 'fakeup-spare');
    assert.equal(spare.last_error_message, 'HTTP 401: Incorrect API key provided.');
    assert.ok(Math.abs(spare.last_error_message_at - Date.now()) < 60_000);
    await noSecretOnPage();

    // Every key of the provider, one after the other.
    await card.getByRole('button', { name: tr('providers.testAll'), exact: true }).click();
    await card.locator('.outcome', { hasText: tr('providers.testAllDone', { ok: '1', count: '2' }) }).waitFor();
    assert.deepEqual(await card.locator('.outcome li').evaluateAll((els) => els.map((e) => [e.dataset.key, e.dataset.test])),
      [['fakeup-primary', 'ok'], ['fakeup-spare', 'invalid']]);
    await noClippedControls('providers with test results at 1280');
    await shot('providers-tests-1280');
    await page.setViewportSize({ width: 390, height: 844 });
    await noClippedControls('providers at 390');
    await noHorizontalOverflow('providers at 390');
    await shot('providers-tests-390');
    await page.setViewportSize({ width: 1280, height: 900 });

    // The dashboard's "keys not normal": validated right there.
    await view('dashboard');
    const unhealthy = page.locator('[data-section="key-health"] tr[data-key="fakeup-spare"]');
    await unhealthy.getByRole('button', { name: tr('providers.validate'), exact: true }).click();
    await page.locator('#toast', { hasText: prefixOf('providers.invalid', 'message', { name: 'spare', http: tr('providers.http', { status: 401 }) }) }).waitFor();
    await idle();
    await noClippedControls('dashboard at 1280');

    // Delete the spare key: asked first, then gone with its secret.
    await view('providers');
    await row('spare').getByRole('button', { name: tr('common.delete'), exact: true }).click();
    const confirm = page.getByRole('dialog', { name: tr('providers.deleteKeyTitle', { name: 'spare' }), exact: true });
    await confirm.waitFor();
    assert.ok((await confirm.innerText()).includes(tr('providers.deleteKeyMessage', { masked: 'sk-…42d1', id: 'fakeup-spare' })));
    await confirm.getByRole('button', { name: tr('common.delete'), exact: true }).click();
    await page.locator('#toast', { hasText: tr('providers.keyDeleted', { name: 'spare' }) }).waitFor();
    await row('spare').waitFor({ state: 'detached' });
    assert.deepEqual((await adminApi('/api/admin/ai-providers/fakeup/keys')).data.map((k) => k.id), ['fakeup-primary']);

    // A provider with a key is not offered for deletion; one without is, after a confirmation.
    await card.getByRole('button', { name: tr('common.delete'), exact: true }).first().click();
    await page.locator('#toast', { hasText: tr('providers.deleteHasKeys', { code: 'fakeup', keys: '1' }) }).waitFor();
    await adminApi('/api/admin/ai-providers', { method: 'POST', body: JSON.stringify({
      provider_code: 'spare-up', provider_name: 'Spare upstream', kind: 'openai_compatible', base_url: `http://127.0.0.1:${upstream.address().port}/v1`,
    }) });
    await page.reload();
    const spareCard = page.locator('section[data-provider="spare-up"]');
    await spareCard.waitFor();
    await idle();
    await spareCard.getByRole('button', { name: tr('common.delete'), exact: true }).click();
    const confirmProvider = page.getByRole('dialog', { name: tr('providers.deleteTitle', { name: 'Spare upstream' }), exact: true });
    await confirmProvider.getByRole('button', { name: tr('common.delete'), exact: true }).click();
    await page.locator('#toast', { hasText: tr('providers.deleted', { code: 'spare-up' }) }).waitFor();
    await spareCard.waitFor({ state: 'detached' });
    assert.ok(!(await adminApi('/api/admin/ai-providers')).data.some((p) => p.provider_code === 'spare-up'));
  });

  apiKeysTests({ lang, BASE, form, tr, shot, adminApi });
  routesTests({ lang, tr, shot, adminApi });
  liveAndAlertsTests({ lang, form, tr, shot, adminApi });
  spendTests({ lang, BASE, form, tr, shot, adminApi });

  if (lang === 'en') switchTest(tr, adminApi);
  else noEnglishTest(tr);
  cacheTest({ lang, BASE, form, tr, adminApi });
  attemptsTest({ lang, BASE, tr, adminApi });
}

// ---- A call's attempts in its details (last: it adds a provider and a call) -------------------

function attemptsTest({ lang, BASE, tr, adminApi }) {
  uiTest('logs: a call’s three attempts on two keys, in order, with keys masked, statuses, messages and the key passed over', async () => {
    const port = upstream.address().port;
    await adminApi('/api/admin/ai-providers', { method: 'POST', body: JSON.stringify({
      provider_code: 'flaky', provider_name: 'Flaky upstream', kind: 'openai_compatible', base_url: `http://127.0.0.1:${port}/flaky/v1`,
    }) });
    // a and b answer; c (the first by priority) is refused by the upstream, so validating it
    // marks it invalid.
    const addKey = (name, priority) => adminApi('/api/admin/ai-providers/flaky/keys', {
      method: 'POST', body: JSON.stringify({ key_name: name, api_key: FLAKY_SECRETS[name], priority }),
    });
    await addKey('a', 10);
    await addKey('b', 1);
    await adminApi('/api/admin/ai-providers/flaky/sync-models', { method: 'POST', body: '{}' });
    await addKey('c', 20);
    const checked = await adminApi('/api/admin/ai-providers/keys/flaky-c/validate', { method: 'POST', body: '{}' });
    assert.equal(checked.key.status, 'invalid');
    const [model] = (await adminApi('/api/admin/ai-models?provider=flaky')).data;
    assert.equal(model.id, 'flaky/flaky-m');
    await adminApi('/api/admin/ai-models/flaky%2Fflaky-m', {
      method: 'PUT', body: JSON.stringify({ version: model.version, is_active: true, prices: { input_price: 1_000_000, output_price: 2_000_000 } }),
    });

    // Key a fails, then key b fails echoing the key it got, then b serves.
    flakyReplies.push([500, 'The flaky upstream failed.'], [500, 'Upstream failed for key {key} (Authorization: Bearer {key})']);
    const r = await fetch(`${BASE}/v1/chat/completions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${CALLER}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'flaky/flaky-m', messages: [{ role: 'user', content: PROMPT }] }),
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-maestro-attempts'), '3');
    const id = r.headers.get('x-request-id');
    await r.json();
    let logged;
    for (let i = 0; i < 100 && !logged; i++) {
      [logged] = (await adminApi(`/api/admin/ai-stats/logs?request_id=${id}`)).data;
      if (!logged) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.deepEqual(logged.attempt_log.map((a) => [a.key_id, a.outcome, a.http_status]),
      [['flaky-a', 'upstream_server_error', 500], ['flaky-b', 'upstream_server_error', 500], ['flaky-b', 'ok', 200]]);

    // Opened by its link, as from a message about the call.
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(`${BASE}/admin/#/logs?request=${id}`);
    const dialog = page.getByRole('dialog', { name: tr('logs.details'), exact: true });
    await dialog.locator('[data-attempts="3"]').waitFor();
    assert.equal(await dialog.locator('.attempts h3').innerText(), tr('logs.attempts.title', { count: '3' }));
    const items = dialog.locator('.timeline > li');
    assert.deepEqual(await items.evaluateAll((els) => els.map((e) => [e.dataset.attempt, e.dataset.outcome])),
      [['1', 'upstream_server_error'], ['2', 'upstream_server_error'], ['3', 'ok']]);
    const key = (name, masked) => tr('logs.attempt.keyMasked', { id: `flaky-${name}`, masked });
    const [first, second, third] = await items.allInnerTexts();
    assert.match(first, inOrder('#1', 'flaky/flaky-m', key('a', 'sk-…aaaa'), tr('logs.attempt.http', { status: 500 }), 'upstream_server_error',
      'The flaky upstream failed.', tr('logs.attempt.skipped', { reason: tr('logs.skip.invalid') }), key('c', 'sk-…cccc')));
    // The key the upstream echoed is masked as everywhere else, the bearer token taken out.
    assert.match(second, inOrder('#2', 'flaky/flaky-m', key('b', 'sk-…bbbb'), tr('logs.attempt.http', { status: 500 }), 'upstream_server_error',
      'Upstream failed for key sk-…bbbb (Authorization: Bearer [redacted])'));
    assert.match(third, inOrder('#3', 'flaky/flaky-m', key('b', 'sk-…bbbb'), tr('logs.attempt.http', { status: 200 })));
    assert.ok(!third.includes('upstream_server_error'), third);
    // Each with its own latency; the key passed over is listed once, at the first attempt.
    assert.equal(await items.locator('[data-latency]').count(), 3);
    assert.deepEqual(await dialog.locator('[data-skipped]').evaluateAll((els) => els.map((e) => [e.dataset.skipped, e.dataset.reason])),
      [['flaky-c', 'invalid']]);
    assert.equal(await dialog.locator('[data-field="attempts"]').innerText(), '3');
    await noSecretOnPage();
    await noClippedControls('call details with attempts at 1280', 'dialog');
    await page.screenshot({ path: path.join(ARTIFACTS, `log-attempts-1280-${lang}.png`) });
    await page.setViewportSize({ width: 390, height: 844 });
    await noClippedControls('call details with attempts at 390', 'dialog');
    await noHorizontalOverflow('call details with attempts at 390');
    await page.screenshot({ path: path.join(ARTIFACTS, `log-attempts-390-${lang}.png`) });
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
  });
}

// ---- Response cache on the dashboard (last: it adds two calls to the totals) ----------------

function cacheTest({ lang, BASE, form, tr, adminApi }) {
  uiTest('dashboard: cache hits, their share of the calls and the money they saved', async () => {
    const call = () => fetch(`${BASE}/v1/chat/completions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${CALLER}`, 'content-type': 'application/json', 'x-maestro-cache': 'on' },
      body: JSON.stringify({ model: 'demo/echo', messages: [{ role: 'user', content: PROMPT }] }),
    });
    const before = (await adminApi('/api/admin/ai-stats/dashboard')).today.usage.requests;
    for (const expected of ['miss', 'hit']) {
      const r = await call();
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('x-maestro-cache'), expected);
      await r.json();
    }
    for (let i = 0; ; i++) {
      const dash = await adminApi('/api/admin/ai-stats/dashboard');
      if (dash.today.usage.requests === before + 2) {
        assert.equal(dash.today.usage.cache_hits, 1);
        assert.equal(dash.today.usage.saved_micros, COST_MICROS / SUCCESSES, 'the cost of the call it reused');
        break;
      }
      assert.ok(i < 100, `the stats hold ${dash.today.usage.requests} calls`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // A fresh load, signed in by the serve banner's link, whatever the test before left open.
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto('about:blank');
    await page.goto(`${BASE}/admin/#token=${ADMIN}`);
    await page.locator('#shell').waitFor();
    await view('dashboard');
    await page.locator('[data-kpi="cache"]').waitFor();
    // As i18n.js's fmtPercent writes it.
    const rate = new Intl.NumberFormat(lang, { style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 1 })
      .format(1 / (before + 2));
    assert.equal(await text('[data-kpi="cache"] [data-period="today"]'), '1');
    assert.equal(await text('[data-kpi="cache"] .kpi-label'), tr('dashboard.kpi.cache'));
    assert.equal(
      await text('[data-kpi="cache"] .kpi-note'),
      tr('dashboard.todayNote', { note: tr('dashboard.kpi.cacheNote', { rate, saved: form.money('0.000183') }) }),
    );
    await noClippedControls('dashboard with the cache card');
  });
}

// ---- Maestro API keys -----------------------------------------------------------------------

function apiKeysTests({ lang, BASE, form, tr, shot, adminApi }) {
  uiTest('api keys: create one, its key shown once with a copy button, then only masked; revoke it after a confirmation', async () => {
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
    await view('apikeys');
    assert.equal(await text('.page-header h1'), tr('apiKeys.title'));
    assert.equal(await page.locator('[data-api-key]').count(), 0);
    await page.getByRole('button', { name: tr('apiKeys.create'), exact: true }).click();
    const create = page.locator(`dialog[aria-label="${tr('apiKeys.createTitle')}"]`);
    await create.waitFor();
    await page.fill('#f-owner', 'user-42');
    await page.fill('#f-key_name', 'ci-7');
    await page.fill('#f-allowed_models', 'demo/echo, smart-1');
    await page.fill('#f-rate_limit_rpm', '60');
    await page.fill('#f-daily_cost', '0,5'); // a comma as the decimal sign: $0.50
    await create.locator('button[type=submit]').click();

    const once = page.getByRole('dialog', { name: tr('apiKeys.onceTitle', { name: 'ci-7' }), exact: true });
    await once.waitFor();
    assert.equal(await create.count(), 0, 'the form is gone');
    const key = await page.inputValue('#new-api-key');
    assert.match(key, /^mk-[A-Za-z0-9_-]{20,}$/);
    assert.ok((await once.innerText()).includes(tr('apiKeys.onceWarning')), 'the warning');
    await noClippedControls('the new key at 1280', 'dialog');
    await page.screenshot({ path: path.join(ARTIFACTS, `apikey-once-1280-${lang}.png`) });
    await once.getByRole('button', { name: tr('apiKeys.copy'), exact: true }).click();
    await once.getByText(tr('apiKeys.copied'), { exact: true }).waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), key, 'the clipboard holds the key');
    // The key is real: it lists the models it may call, and only those.
    const models = await fetch(`${BASE}/v1/models`, { headers: { Authorization: `Bearer ${key}` } });
    assert.equal(models.status, 200);
    assert.deepEqual((await models.json()).data.map((m) => m.id), ['demo/echo']);

    await once.getByRole('button', { name: tr('apiKeys.onceDone'), exact: true }).click();
    await once.waitFor({ state: 'detached' });
    await idle();
    const row = page.locator('tr[data-owner="user-42"]');
    await row.waitFor();
    const masked = `mk-…${key.slice(-4)}`;
    assert.equal(await row.locator('[data-masked]').innerText(), masked);
    assert.equal(await row.locator('[data-field="owner"]').innerText(), 'user-42');
    assert.equal(await row.locator('[data-field="models"]').innerText(), ['demo/echo', 'smart-1'].join(tr('common.listSeparator')));
    const limits = await row.locator('[data-field="limits"]').innerText();
    assert.ok(limits.includes(tr('limit.rpm', { value: '60' })), limits);
    assert.ok(limits.includes(tr('apiKeys.limit.cost', { value: form.money('0.50') })), limits);
    assert.equal(await row.locator('.badge[data-active="true"]').innerText(), tr('apiKeys.active'));
    const html = await page.content();
    assert.ok(!html.includes(key), 'the full key is not on the page any more');
    assert.ok(!(await page.$$eval('input, textarea', (els) => els.map((e) => e.value))).includes(key));
    const [stored] = (await adminApi('/api/admin/api-keys?owner=user-42')).data;
    assert.deepEqual(
      [stored.key_name, stored.masked_key, stored.allowed_models, stored.rate_limit_rpm, stored.daily_token_budget, stored.daily_cost_budget_micros],
      ['ci-7', masked, ['demo/echo', 'smart-1'], 60, null, 500_000]);
    assert.ok(!('api_key' in stored));

    await noClippedControls('api keys at 1280');
    await noHorizontalOverflow('api keys at 1280');
    await shot('apikeys-1280');
    await page.setViewportSize({ width: 390, height: 844 });
    await noClippedControls('api keys at 390');
    await noClippedControls('navigation at 390', '.nav');
    await noHorizontalOverflow('api keys at 390');
    await shot('apikeys-390');

    // Revoke: asked first; "Cancel" changes nothing.
    await row.getByRole('button', { name: tr('apiKeys.revoke'), exact: true }).click();
    const confirm = page.getByRole('dialog', { name: tr('apiKeys.revokeTitle', { name: 'ci-7' }), exact: true });
    await confirm.waitFor();
    assert.ok((await confirm.innerText()).includes(tr('apiKeys.revokeMessage', { masked, owner: 'user-42' })));
    await noClippedControls('revoke confirmation at 390', 'dialog');
    await page.setViewportSize({ width: 1280, height: 900 });
    await confirm.getByRole('button', { name: tr('common.cancel'), exact: true }).click();
    await confirm.waitFor({ state: 'detached' });
    assert.equal((await adminApi('/api/admin/api-keys?owner=user-42')).data[0].is_active, true);

    await row.getByRole('button', { name: tr('apiKeys.revoke'), exact: true }).click();
    await confirm.getByRole('button', { name: tr('apiKeys.revoke'), exact: true }).click();
    await page.locator('#toast', { hasText: tr('apiKeys.revokedToast', { name: 'ci-7' }) }).waitFor();
    await idle();
    assert.equal(await row.count(), 0, 'only active keys are listed by default');
    await page.selectOption('#apikeys-state', 'revoked');
    await row.locator('.badge[data-active="false"]', { hasText: tr('apiKeys.revoked') }).waitFor();
    assert.equal(await row.getByRole('button', { name: tr('apiKeys.revoke'), exact: true }).count(), 0);
    const [before, after] = tr('apiKeys.revokedAt', { time: '\u0000' }).split('\u0000');
    const when = await row.locator('[data-field="revoked"]').innerText();
    assert.ok(when.startsWith(before) && when.endsWith(after), when);
    assert.match(when.slice(before.length, when.length - after.length), form.dateTime);
    const [revoked] = (await adminApi('/api/admin/api-keys?owner=user-42')).data;
    assert.equal(revoked.is_active, false);
    assert.ok(revoked.revoked_at);
    const refused = await fetch(`${BASE}/v1/models`, { headers: { Authorization: `Bearer ${key}` } });
    assert.equal(refused.status, 401, 'a revoked key is refused');
    await refused.body?.cancel();
    await noSecretOnPage();
  });
}


// ---- The switch -----------------------------------------------------------------------------

/** On the English runner, signed in, on the logs with the calls of the scenario. */
function switchTest(tr, adminApi) {
  uiTest('language: the switch re-renders in place, is remembered, and formats per locale', async () => {
    const zh = (id, params) => translate('zh-CN', id, params);
    const switcher = page.getByRole('combobox', { name: tr('lang.label'), exact: true });
    await view('dashboard');
    await view('logs'); // afresh: every call, no filter
    const url = page.url();
    // A demo/echo call's cost (columns: tokens, cost, latency, tries).
    const cost = page.locator('[data-request]').filter({ hasText: 'demo/echo' }).first().locator('td.num').nth(1);
    const when = page.locator('[data-request] [data-ts]').first();
    const ts = Number(await when.getAttribute('data-ts'));
    const intl = (l) => page.evaluate(([l, ts, o]) => new Intl.DateTimeFormat(l, o).format(ts), [l, ts, DATE_TIME]);
    const english = await when.innerText();
    assert.equal(english, await intl('en'));
    const englishCost = await cost.innerText();
    assert.equal(englishCost, FORMS.en.money('0.000183'));
    await page.evaluate(() => { window.sameDocument = true; });

    await switcher.selectOption({ label: '简体中文' });
    await page.locator('html[lang="zh-CN"]').waitFor();
    await idle();
    assert.equal(await text('.nav a[data-view="logs"]'), zh('nav.logs'));
    assert.equal(await text('.page-header h1'), zh('logs.title'));
    assert.equal(await text('#signout'), zh('nav.signout'));
    assert.equal(await page.title(), zh('app.viewTitle', { view: zh('nav.logs') }));
    assert.equal(page.url(), url, 'the same route');
    assert.equal(await page.evaluate(() => window.sameDocument), true, 'no reload');
    assert.equal(await page.evaluate(() => localStorage.getItem('maestro.lang')), 'zh-CN');
    // Dates and money as Intl writes them in Chinese, unlike in English.
    const chinese = await when.innerText();
    assert.equal(chinese, await intl('zh-CN'));
    assert.match(chinese, FORMS['zh-CN'].dateTime);
    assert.notEqual(chinese, english);
    assert.equal(await cost.innerText(), FORMS['zh-CN'].money('0.000183'));
    await page.getByRole('combobox', { name: zh('lang.label'), exact: true }).waitFor();

    // Remembered: a reload keeps Chinese (and the session), on the same route.
    await page.reload();
    await page.locator('.pager').waitFor();
    await idle();
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
    assert.equal(page.url(), url);
    assert.equal(await text('.page-header h1'), zh('logs.title'));
    assert.equal(await when.innerText(), chinese);
    await view('dashboard');
    // Today's cost: the scenario's calls and the key test calls (whatever this test finds).
    const micros = (await adminApi('/api/admin/ai-stats/dashboard')).today.usage.cost_micros;
    const dollars = `${Math.floor(micros / 1e6)}.${String(micros % 1e6).padStart(6, '0')}`.replace(/(\.\d\d\d*?)0+$/, '$1');
    assert.ok(micros > 1281, `${micros}`);
    assert.equal(await text('[data-kpi="cost"] [data-period="today"]'), FORMS['zh-CN'].money(dollars));
    assert.equal(await text('[data-kpi="cost"] .kpi-label'), zh('dashboard.kpi.cost'));

    // And back, in place again.
    await page.getByRole('combobox', { name: zh('lang.label'), exact: true }).selectOption('en');
    await page.locator('html[lang="en"]').waitFor();
    await idle();
    assert.equal(await text('[data-kpi="cost"] .kpi-label'), tr('dashboard.kpi.cost'));
    assert.equal(await text('[data-kpi="cost"] [data-period="today"]'), FORMS.en.money(dollars));
    assert.equal(await page.evaluate(() => localStorage.getItem('maestro.lang')), 'en');

    // With nothing stored, the browser's language decides: a Chinese browser gets Chinese.
    const browser = await chromium.launch(LAUNCH);
    try {
      const fresh = await browser.newContext({ locale: 'zh-CN', timezoneId: 'UTC' });
      const other = await fresh.newPage();
      watch(other);
      await other.goto(`${URLS.en}/admin/`);
      await other.locator('#signin-form').waitFor();
      assert.equal(await other.getAttribute('html', 'lang'), 'zh-CN');
      assert.equal(await other.locator('#signin-form button[type=submit]').innerText(), zh('signin.submit'));
      assert.equal(await other.evaluate(() => localStorage.getItem('maestro.lang')), null, 'detected, not stored');
      // The sign-in card has the switch too.
      await other.getByRole('combobox', { name: zh('lang.label'), exact: true }).selectOption('en');
      await other.locator('html[lang="en"]').waitFor();
      assert.equal(await other.locator('#signin-form button[type=submit]').innerText(), tr('signin.submit'));
      assert.equal(await other.locator('label[for="signin-token"]').innerText(), tr('signin.tokenLabel'));
      assert.equal(await other.title(), tr('app.title'));
      assert.equal(await other.evaluate(() => localStorage.getItem('maestro.lang')), 'en');
    } finally {
      await browser.close();
    }
  });
}

// ---- No English left ------------------------------------------------------------------------

// What the Chinese pages may still spell in Latin letters: names, units and standards, and the
// scenario's own data (key names, provider and model codes, a placeholder's example, a parameter).
const ALLOWED = /\b(Maestro|UTC|HTTP|Token|API|URL|ID|CSV|P50|P95|US|Webhook|JSON|Slack|Lark|primary|spare|fakeup|demo|echo|music|smart|lyrics|logprobs)\b/g;
// Code-like tokens (ids, model names, paths, scopes, examples): anything with a digit or a sign.
const CODE = /[A-Za-z0-9_.:/$…-]*[0-9_.:/$…-][A-Za-z0-9_.:/$…-]*/g;
// Labels of the English console that must not survive in Chinese.
const KEY_LABELS = [
  'Dashboard', 'Providers', 'Models', 'Logs', 'Sign out', 'Refresh', 'Requests', 'Success rate', 'Tokens', 'Cost',
  'Latency', 'Top models', 'Keys near their limits', 'Keys not normal', 'Add provider', 'Add key', 'Validate', 'Sync models',
  'Edit', 'Activate', 'Deactivate', 'Priority', 'Limits', 'Last used', 'Secret', 'Per page', 'Apply', 'Reset', 'Older',
  'Newer', 'Time (UTC)', 'Status', 'Every provider', 'Search models', 'Loading', 'Cancel', 'Save', 'Close', 'Call details',
  'active', 'inactive', 'invalid', 'normal', 'never', 'days', 'today', 'failed', 'Language',
  'Routes', 'API keys', 'Add route', 'Strategy', 'Targets', 'Rules', 'Weight', 'Create key', 'Revoke', 'Owner', 'Delete',
  'fallback', 'weighted', 'cheapest', 'fastest', 'any', 'yes', 'no',
];

/** The console's own words on screen: labels, headings, buttons, badges and their attributes. */
const chrome = () => page.evaluate(() => {
  const shown = (el) => el.getClientRects().length > 0 || el.tagName === 'OPTION';
  const own = [
    'h1', '.view h2:not(.provider h2)', 'dialog h2', '.table-wrap th', 'button', 'label', 'dt', '.field small', 'figcaption',
    '.empty', '.nav a', '.page-header p', '.card-head > .muted', '.kpi-label', '.kpi-note', '.pager [data-page]',
    '.u-legend .u-series:first-child th',
    '.badge[data-status]', '.badge[data-active]', 'td .badges .badge', '.notice', 'dialog p', '.page-header .actions .small',
    'option:not(.lang-switch option):not(#models-provider option):not(#logs-limit option):not(#f-kind option)',
  ].join(', ');
  const texts = [...document.querySelectorAll(own)].filter(shown).map((el) => el.innerText || el.textContent);
  for (const el of document.querySelectorAll('[placeholder], [aria-label]:not(tr), [title]')) {
    for (const name of ['placeholder', 'aria-label', 'title']) if (el.hasAttribute(name)) texts.push(el.getAttribute(name));
  }
  texts.push(document.title);
  return texts.map((s) => s.trim()).filter(Boolean);
});

function noEnglishTest(tr) {
  uiTest('no English label is left on the main pages and dialogs in 简体中文', async () => {
    const seen = [];
    const check = async (where) => {
      for (const label of await chrome()) seen.push([where, label]);
    };
    for (const name of ['dashboard', 'live', 'spend', 'providers', 'models', 'routes', 'apikeys', 'logs', 'alerts']) {
      await view(name);
      await page.locator('#view .loading').waitFor({ state: 'detached' });
      await check(name);
    }
    await view('apikeys');
    await page.selectOption('#apikeys-state', '');
    await page.locator('tr[data-owner="user-42"]').waitFor();
    await check('api keys, revoked too');
    await page.getByRole('button', { name: tr('apiKeys.create'), exact: true }).click();
    await check('create api key');
    await page.keyboard.press('Escape');
    await view('routes');
    await page.getByRole('button', { name: tr('routes.add'), exact: true }).click();
    await page.selectOption('#route-strategy', 'weighted');
    await page.selectOption('#route-add-target', 'demo/echo');
    await page.locator('[data-targets="route"]').getByRole('button', { name: tr('routes.addTarget'), exact: true }).click();
    await page.getByRole('button', { name: tr('routes.addRule'), exact: true }).click();
    await page.selectOption('#rule-0-add-target', 'demo/echo');
    await page.locator('[data-targets="rule-0"]').getByRole('button', { name: tr('routes.addTarget'), exact: true }).click();
    await check('route editor');
    await page.keyboard.press('Escape');
    await view('providers');
    await page.getByRole('button', { name: tr('providers.add'), exact: true }).click();
    await check('add provider');
    await page.getByRole('button', { name: tr('common.cancel'), exact: true }).click();
    await page.locator('section[data-provider="fakeup"] tr[data-key="fakeup-primary"]').getByRole('button', { name: tr('common.edit'), exact: true }).click();
    await check('edit key');
    await page.keyboard.press('Escape');
    await view('models');
    await page.locator('tr[data-model="demo/echo"]').getByRole('button', { name: tr('common.edit'), exact: true }).click();
    await check('edit model');
    await page.keyboard.press('Escape');
    await view('logs');
    await page.locator('[data-request]').first().click();
    await check('call details');
    await page.keyboard.press('Escape');
    await page.click('#signout');
    await page.locator('#signin-form').waitFor();
    await check('sign-in');
    assert.equal(await page.locator('#signin-help').innerText(), tr('signin.help', { link: 'Admin console', command: 'maestro serve' }));

    // For a reader: every label checked, by page (target/console-artifacts/labels-zh-CN.txt).
    fs.writeFileSync(path.join(ARTIFACTS, 'labels-zh-CN.txt'), [...new Set(seen.map(([where, label]) => `${where}\t${label}`))].join('\n'));
    const english = seen.filter(([, label]) => KEY_LABELS.some((word) => new RegExp(`(^|[^A-Za-z])${escape(word)}([^A-Za-z]|$)`).test(label))
      || /[A-Za-z]{3,}/.test(label.replace(CODE, ' ').replace(ALLOWED, ' ')));
    assert.deepEqual(english, [], 'English left on the Chinese pages');
    assert.ok(seen.length > 150, `${seen.length} labels checked`);
    for (const label of ['仪表盘', '供应商', '模型', '调用日志', '成功率', '密钥', '费用', '延迟 P50', '路由', '规则 1', '吊销', '按权重']) {
      assert.ok(seen.some(([, l]) => l.includes(label)), `${label} is on a page`);
    }
  });
}

// ---- Routes ---------------------------------------------------------------------------------

function routesTests({ lang, tr, shot, adminApi }) {
  const editor = () => page.locator('dialog[data-dialog="route"]');
  /** Adds `id` from the active models to the target list `prefix` (`route`, `rule-0`). */
  async function addTarget(prefix, id) {
    await page.selectOption(`#${prefix}-add-target`, id);
    await page.locator(`[data-targets="${prefix}"]`).getByRole('button', { name: tr('routes.addTarget'), exact: true }).click();
    await page.locator(`[data-targets="${prefix}"] li[data-target="${id}"]`).waitFor();
  }
  const route = async (name) => (await adminApi('/api/admin/ai-routes')).data.find((r) => r.name === name);

  uiTest('routes: a weighted route with a rule is saved exactly as typed, and reads back after a reload', async () => {
    await view('routes');
    assert.equal(await text('.page-header h1'), tr('routes.title'));
    await page.getByRole('button', { name: tr('routes.add'), exact: true }).click();
    await editor().waitFor();
    assert.equal(await editor().getAttribute('aria-label'), tr('routes.addTitle'));
    await page.fill('#route-name', 'lyrics-mix');
    await page.selectOption('#route-strategy', 'weighted');
    await addTarget('route', 'demo/echo');
    await addTarget('route', 'fakeup/fake-small');
    await page.fill('#route-weight-0', '3');
    await page.fill('#route-weight-1', '1');

    await page.getByRole('button', { name: tr('routes.addRule'), exact: true }).click();
    const rule = page.locator('[data-rule="0"]');
    await rule.waitFor();
    await page.fill('#rule-0-cjk', '0,3'); // a comma as the decimal sign
    await page.fill('#rule-0-tag', 'lyrics');
    await page.selectOption('#rule-0-strategy', 'fallback');
    await addTarget('rule-0', 'demo/echo');
    await addTarget('rule-0', 'fakeup/fake-small');
    // Order: fake-small first, moved up with its button.
    await page.getByRole('button', { name: tr('routes.moveTargetUp', { target: 'fakeup/fake-small' }), exact: true }).last().click();
    assert.deepEqual(await rule.locator('li[data-target]').evaluateAll((els) => els.map((e) => e.dataset.target)), ['fakeup/fake-small', 'demo/echo']);
    assert.equal(await rule.locator('input[id^="rule-0-weight"]').count(), 0, 'no weights for a fallback rule');

    await noClippedControls('route editor at 1280', 'dialog');
    await page.screenshot({ path: path.join(ARTIFACTS, `route-editor-1280-${lang}.png`) });
    await page.setViewportSize({ width: 390, height: 844 });
    await noClippedControls('route editor at 390', 'dialog');
    await page.screenshot({ path: path.join(ARTIFACTS, `route-editor-390-${lang}.png`) });
    await editor().evaluate((d) => { d.scrollTop = 0; });
    await page.screenshot({ path: path.join(ARTIFACTS, `route-editor-top-390-${lang}.png`) });
    await rule.scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(ARTIFACTS, `route-editor-rule-390-${lang}.png`) });
    await page.setViewportSize({ width: 1280, height: 900 });

    await editor().locator('button[type=submit]').click();
    await editor().waitFor({ state: 'detached' });
    await page.locator('#toast', { hasText: tr('routes.added', { name: 'lyrics-mix' }) }).waitFor();

    await page.reload();
    await page.locator('tr[data-route="lyrics-mix"]').waitFor();
    await idle();
    const saved = await route('lyrics-mix');
    assert.deepEqual(saved, {
      name: 'lyrics-mix',
      targets: ['demo/echo', 'fakeup/fake-small'],
      drop_params: false,
      strategy: 'weighted',
      weights: [3, 1],
      rules: [{ when: { cjk_share_at_least: 0.3, tag: 'lyrics' }, targets: ['fakeup/fake-small', 'demo/echo'], strategy: 'fallback' }],
      // The editor leaves the response cache alone: off, as a new route starts.
      cache_ttl_secs: null,
      cache_scope: 'user',
      cache_sampled: false,
      version: 1,
    });
    const row = page.locator('tr[data-route="lyrics-mix"]');
    assert.equal(await row.locator('[data-strategy]').innerText(), tr('routes.strategy.weighted'));
    assert.equal(await row.locator('[data-field="rules"]').innerText(), '1');
    assert.deepEqual((await row.locator('.target-summary li').allInnerTexts()).map((s) => s.trim()), ['demo/echo × 3', 'fakeup/fake-small × 1']);

    // The editor reads it back as it was typed (the share as a decimal).
    await row.getByRole('button', { name: tr('common.edit'), exact: true }).click();
    await editor().waitFor();
    assert.equal(await page.inputValue('#route-strategy'), 'weighted');
    assert.deepEqual([await page.inputValue('#route-weight-0'), await page.inputValue('#route-weight-1')], ['3', '1']);
    assert.deepEqual([await page.inputValue('#rule-0-cjk'), await page.inputValue('#rule-0-tag'), await page.inputValue('#rule-0-strategy')],
      ['0.3', 'lyrics', 'fallback']);
    assert.deepEqual([await page.inputValue('#rule-0-images'), await page.inputValue('#rule-0-tools'), await page.inputValue('#rule-0-user')], ['any', 'any', '']);
    assert.equal(await page.locator('#route-name').count(), 0, 'a name cannot change');
    await page.keyboard.press('Escape');
    await editor().waitFor({ state: 'detached' });

    await noClippedControls('routes at 1280');
    await noHorizontalOverflow('routes at 1280');
    await shot('routes-1280');
    await page.setViewportSize({ width: 390, height: 844 });
    await noClippedControls('routes at 390');
    await noHorizontalOverflow('routes at 390');
    await shot('routes-390');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  uiTest('routes: a form error names its field; a 409 keeps the dialog and the input; a second save wins; delete after a confirmation', async () => {
    await view('routes');
    const row = page.locator('tr[data-route="lyrics-mix"]');
    await row.getByRole('button', { name: tr('common.edit'), exact: true }).click();
    await editor().waitFor();
    const error = editor().locator('[data-error]');

    // A 400 of the API names a field: said in the dialog, that field marked, the input kept.
    await page.fill('#route-weight-0', '0');
    await page.fill('#route-weight-1', '0');
    await expecting([/status of 400/], async () => {
      await editor().locator('button[type=submit]').click();
      await error.filter({ hasText: 'at least one weight above 0' }).waitFor();
      await idle();
    });
    assert.equal(await page.getAttribute('#route-weight-0', 'aria-invalid'), 'true');
    assert.equal(await page.inputValue('#route-weight-1'), '0');
    await page.fill('#route-weight-0', '3');
    await page.fill('#route-weight-1', '1');

    // Something the form cannot read: said in the dialog, the field marked, nothing sent.
    await page.fill('#rule-0-cjk', '1,5');
    await editor().locator('button[type=submit]').click();
    await error.waitFor();
    assert.equal(await error.innerText(), tr('routes.error.cjk', { n: '1' }));
    assert.equal(await page.getAttribute('#rule-0-cjk', 'aria-invalid'), 'true');
    await page.fill('#rule-0-cjk', '30 %');

    // Someone else saves the route meanwhile.
    const before = await route('lyrics-mix');
    await adminApi('/api/admin/ai-routes/lyrics-mix', { method: 'PUT', body: JSON.stringify({ version: before.version, drop_params: true }) });
    await page.fill('#rule-0-tag', 'lyrics-zh');
    await expecting([/status of 409/], async () => {
      await editor().locator('button[type=submit]').click();
      await error.filter({ hasText: tr('routes.conflict') }).waitFor();
      await idle();
    });
    assert.equal(await editor().count(), 1, 'the dialog stays');
    assert.equal(await page.inputValue('#rule-0-tag'), 'lyrics-zh', 'with the input');
    assert.equal(await page.inputValue('#rule-0-cjk'), '30 %');
    assert.equal((await route('lyrics-mix')).rules[0].when.tag, 'lyrics', 'nothing saved');
    await noClippedControls('route editor with a conflict', 'dialog');
    await page.screenshot({ path: path.join(ARTIFACTS, `route-conflict-1280-${lang}.png`) });

    // Saving again, knowingly, replaces the other version.
    await editor().locator('button[type=submit]').click();
    await editor().waitFor({ state: 'detached' });
    await page.locator('#toast', { hasText: tr('routes.saved', { name: 'lyrics-mix' }) }).waitFor();
    const after = await route('lyrics-mix');
    assert.deepEqual(after.rules[0].when, { cjk_share_at_least: 0.3, tag: 'lyrics-zh' });
    assert.equal(after.drop_params, false);
    assert.equal(after.version, before.version + 2);

    // Delete: asked first.
    await idle();
    await row.getByRole('button', { name: tr('common.delete'), exact: true }).click();
    const confirm = page.getByRole('dialog', { name: tr('routes.deleteTitle', { name: 'lyrics-mix' }), exact: true });
    await confirm.waitFor();
    assert.ok((await confirm.innerText()).includes(tr('routes.deleteMessage', { name: 'lyrics-mix' })));
    await confirm.getByRole('button', { name: tr('common.delete'), exact: true }).click();
    await page.locator('#toast', { hasText: tr('routes.deleted', { name: 'lyrics-mix' }) }).waitFor();
    await row.waitFor({ state: 'detached' });
    assert.equal(await route('lyrics-mix'), undefined);
    assert.equal(await text('#view td.empty'), tr('routes.empty'));
  });
}

// ---- Live panel and alerts ------------------------------------------------------------------

/** A webhook receiver for the alert channel: every POST's JSON body and signature header. */
function startHookReceiver() {
  const got = [];
  const server = http.createServer(async (req, res) => {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    got.push({ raw, body: JSON.parse(raw || 'null'), signature: req.headers['x-maestro-signature'] });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{}');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, got, url: `http://127.0.0.1:${server.address().port}/hooks/maestro-alerts` })));
}

/** Micro-USD as fmtMoney writes the amount: 2 to 6 decimals. */
const dollars = (micros) => (micros / 1e6).toFixed(6).replace(/(\.\d\d\d*?)0+$/, '$1');

async function until(what, check, ms = 20_000) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    assert.ok(Date.now() < end, `waited ${ms / 1000} s for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function liveAndAlertsTests({ lang, form, tr, shot, adminApi }) {
  const HOOK_SECRET = 'whsec-console-alerts-91c4';

  uiTest('live: the last 15 minutes per minute, as the API counts them, refreshing by itself; at 1280 and 390 pixels', async () => {
    await view('live');
    await page.locator('figure[data-chart="tokens"] canvas').waitFor();
    const live = await adminApi('/api/admin/ai-stats/live');
    assert.equal(live.points.length, 15);
    assert.ok(live.total.requests >= SUCCESSES + FAILURES, `${live.total.requests} calls in the last 15 minutes`);
    const kpi = (name) => text(`[data-kpi="${name}"] .kpi-value`);
    assert.equal(await kpi('requests'), String(live.total.requests));
    assert.equal(await text('[data-kpi="requests"] .kpi-note'), tr('live.kpi.requestsNote', { count: String(live.total.errors) }));
    assert.equal(await kpi('tokens'), String(live.total.total_tokens));
    assert.equal(await kpi('cost'), form.money(dollars(live.total.cost_micros)));
    assert.match(await kpi('p95'), form.latency);
    for (const chart of ['calls', 'latency', 'cost', 'tokens']) {
      await page.locator(`figure[data-chart="${chart}"] canvas`).waitFor();
      assert.equal(await text(`figure[data-chart="${chart}"] figcaption`), tr(`live.chart.${chart}`));
    }
    const demo = live.providers.find((p) => p.provider === 'demo');
    assert.equal(await text('[data-section="live-providers"] tr[data-provider="demo"] td:nth-child(2)'), String(demo.usage.requests));
    assert.equal(await text('[data-section="live-alerts"] td.empty'), tr('live.noRules'));

    // It refreshes by itself; paused, it does not.
    const stamp = () => page.locator('[data-field="updated"]').getAttribute('data-generated-at');
    const first = await stamp();
    await until('a refresh', async () => (await stamp()) !== first, 12_000);
    if (lang === 'en') {
      await page.locator('button[data-action="pause"]').click();
      assert.equal(await page.locator('button[data-action="pause"]').getAttribute('aria-pressed'), 'true');
      await idle();
      const paused = await stamp();
      await page.waitForTimeout(6_000);
      assert.equal(await stamp(), paused, 'paused: no refresh');
      await page.locator('button[data-action="pause"]').click();
    }
    await shot('live-1280');
    await page.setViewportSize({ width: 390, height: 900 });
    try {
      await idle();
      await noHorizontalOverflow('live at 390 px');
      await noClippedControls('live at 390 px');
      await shot('live-390');
    } finally {
      await page.setViewportSize({ width: 1280, height: 900 });
    }
  });

  uiTest('alerts: a webhook channel (secret write-only, a test message), an error-rate rule that fires and resolves, both seen live; delete', async () => {
    const hook = await startHookReceiver();
    try {
      await view('alerts');
      assert.equal(await text('[data-section="rules"] td.empty'), tr('alerts.rulesEmpty'));
      assert.equal(await text('[data-section="history"] td.empty'), tr('alerts.historyEmpty'));

      // A channel: its URL and secret are typed once and never shown again.
      await page.locator('button[data-action="add-channel"]').click();
      const channelForm = page.locator('dialog[data-dialog="alert-channel"]');
      await channelForm.locator('#f-name').fill('ops-hook');
      await channelForm.locator('#f-kind').selectOption('webhook');
      await channelForm.locator('#f-url').fill(hook.url);
      await channelForm.locator('#f-secret').fill(HOOK_SECRET);
      await channelForm.getByRole('button', { name: tr('alerts.addChannel'), exact: true }).click();
      await channelForm.waitFor({ state: 'detached' });
      await idle();
      const channelRow = page.locator('[data-section="channels"] tr[data-channel="ops-hook"]');
      assert.equal(await channelRow.locator('[data-field="target"]').innerText(), `${new URL(hook.url).origin}/hooks/…`);
      assert.equal(await channelRow.locator('.badge').innerText(), tr('alerts.secretSet'));
      assert.ok(!(await page.content()).includes(HOOK_SECRET), 'the secret is not on the page');

      await channelRow.locator('button[data-action="test"]').click();
      await page.locator('#toast', { hasText: tr('alerts.testDelivered', { name: 'ops-hook' }) }).waitFor();
      assert.equal(hook.got.length, 1);
      const signed = (g) => `sha256=${crypto.createHmac('sha256', HOOK_SECRET).update(g.raw).digest('hex')}`;
      assert.equal(hook.got[0].signature, signed(hook.got[0]), 'signed with the secret typed in');

      // A rule: a threshold that is not a number is refused in the form; then 10 % over an hour.
      await page.locator('button[data-action="add-rule"]').click();
      const ruleForm = page.locator('dialog[data-dialog="alert-rule"]');
      await ruleForm.locator('#f-name').fill('errors');
      await ruleForm.locator('#f-kind').selectOption('spend');
      assert.equal(await ruleForm.locator('#f-threshold-hint').innerText(), tr('alerts.thresholdHint.spend'));
      await ruleForm.locator('#f-kind').selectOption('error_rate');
      await ruleForm.locator('#f-threshold').fill('ten');
      await ruleForm.getByRole('button', { name: tr('alerts.addRule'), exact: true }).click();
      assert.equal(await ruleForm.locator('[data-error]').innerText(), tr('alerts.thresholdInvalid'));
      assert.equal(await ruleForm.locator('#f-threshold').getAttribute('aria-invalid'), 'true');
      await ruleForm.locator('#f-threshold').fill('10');
      await ruleForm.locator('#f-window_minutes').fill('60');
      await ruleForm.locator('#f-min_calls').fill('1');
      assert.equal(await ruleForm.locator('#f-channels').inputValue(), 'ops-hook');
      await ruleForm.getByRole('button', { name: tr('alerts.addRule'), exact: true }).click();
      await ruleForm.waitFor({ state: 'detached' });
      await idle();
      const ruleRow = page.locator('[data-section="rules"] tr[data-rule="errors"]');
      assert.equal(await ruleRow.locator('[data-field="condition"]').innerText(),
        tr('alerts.condition.over', { value: lang === 'en' ? '10%' : '10%', window: tr('alerts.window', { minutes: '60' }) }));
      const stored = (await adminApi('/api/admin/ai-alerts')).data.find((r) => r.name === 'errors');
      assert.deepEqual([stored.kind, stored.threshold, stored.window_minutes, stored.min_calls, stored.channels, stored.enabled],
        ['error_rate', 10, 60, 1, ['ops-hook'], true]);

      // 2 of the calls failed (over 10 %): it fires within a few rounds, once.
      const firing = await until('the firing notification', () => hook.got.find((g) => g.body?.alert === 'errors' && g.body?.state === 'firing'));
      assert.equal(firing.body.alert, 'errors');
      assert.equal(firing.signature, signed(firing));
      await until('the firing history entry', async () => (await adminApi('/api/admin/ai-alerts/history'))
        .some((e) => e.rule === 'errors' && e.event === 'firing'));
      await view('live');
      await page.locator('[data-section="live-alerts"] tr[data-rule="errors"] [data-state="firing"]').waitFor();
      await page.locator('[data-section="live-alerts"] tr[data-rule="errors"][data-event="firing"]').waitFor();
      await view('alerts');
      await ruleRow.locator('[data-state="firing"]').waitFor();
      const fired = page.locator('[data-section="history"] tr[data-rule="errors"][data-event="firing"]');
      assert.equal(await fired.locator('[data-delivered]').innerText(), 'ops-hook');

      // Raised to 90 %: it resolves, and says so once.
      await ruleRow.locator('button[data-action="edit"]').click();
      await ruleForm.locator('#f-threshold').fill('90');
      await ruleForm.getByRole('button', { name: tr('common.save'), exact: true }).click();
      await ruleForm.waitFor({ state: 'detached' });
      const resolved = await until('the resolved notification', () => hook.got.find((g) => g.body?.alert === 'errors' && g.body?.state === 'resolved'));
      assert.equal(resolved.body.alert, 'errors');
      assert.equal(hook.got.filter((g) => g.body?.alert === 'errors' && g.body?.state === 'firing').length, 1, 'fired once');
      // The history entry is written as the round ends, just after the send.
      await until('the resolved history entry', async () => (await adminApi('/api/admin/ai-alerts/history'))
        .some((e) => e.rule === 'errors' && e.event === 'resolved'));
      await view('live');
      await page.locator('[data-section="live-alerts"] tr[data-rule="errors"][data-event="resolved"]').waitFor();
      await view('alerts');
      await page.locator('[data-section="history"] tr[data-rule="errors"][data-event="resolved"]').waitFor();
      await ruleRow.locator('[data-state="ok"]').waitFor();
      await shot('alerts-1280');
      await page.setViewportSize({ width: 390, height: 900 });
      try {
        await noHorizontalOverflow('alerts at 390 px');
        await noClippedControls('alerts at 390 px');
        await shot('alerts-390');
      } finally {
        await page.setViewportSize({ width: 1280, height: 900 });
      }

      // A channel a rule sends to cannot go; the rule first, then the channel.
      await expecting([/409/], async () => {
        await channelRow.locator('button[data-action="delete"]').click();
        await page.locator('dialog [data-action="confirm"], dialog button.danger').first().click();
        await page.locator('dialog [role="alert"]:not([hidden])').waitFor();
        await page.keyboard.press('Escape');
      });
      await ruleRow.locator('button[data-action="delete"]').click();
      await page.locator('dialog button.danger').first().click();
      await ruleRow.waitFor({ state: 'detached' });
      await channelRow.locator('button[data-action="delete"]').click();
      await page.locator('dialog button.danger').first().click();
      await channelRow.waitFor({ state: 'detached' });
      const after = await adminApi('/api/admin/ai-alerts');
      assert.deepEqual([after.data.length, after.channels.length], [0, 0]);
      await noSecretOnPage();
    } finally {
      hook.server.close();
    }
  });
}

// ---- Spend ----------------------------------------------------------------------------------

function spendTests({ lang, BASE, form, tr, shot, adminApi }) {
  uiTest('spend: per user, per API key and per model as the API sums them; the choice in the address; at 1280 and 390 pixels', async () => {
    const created = await adminApi('/api/admin/api-keys', { method: 'POST', body: JSON.stringify({ owner: 'music-app', key_name: 'spend-test' }) });
    for (let i = 0; i < 2; i++) {
      const r = await fetch(`${BASE}/v1/chat/completions`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${created.api_key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'demo/echo', messages: [{ role: 'user', content: PROMPT }] }),
      });
      assert.equal(r.status, 200);
      await r.json();
    }
    const perCall = COST_MICROS / SUCCESSES;
    await until('the key\'s calls in the spend', async () => {
      const byKey = await adminApi('/api/admin/ai-stats/spend?by=caller_key');
      return byKey.top.some((g) => g.group === created.id && g.usage.requests === 2);
    });

    await view('spend');
    await page.locator('[data-section="spend-top"] tbody tr').first().waitFor();
    assert.equal(await page.locator('[data-section="spend-controls"] button[aria-pressed="true"]').first().innerText(), tr('spend.by.user'));
    const byUser = await adminApi('/api/admin/ai-stats/spend?by=user');
    const cost = (group) => text(`[data-section="spend-top"] tr[data-group="${group}"] [data-cost]`);
    for (const g of byUser.top) assert.equal(await cost(g.group), form.money(dollars(g.usage.cost_micros)), g.group);
    assert.equal(await cost('music-app'), form.money(dollars(2 * perCall)));
    assert.equal(await text('[data-kpi="cost"] .kpi-value'), form.money(dollars(byUser.total.cost_micros)));
    await page.locator('figure[data-chart="spend"] canvas').waitFor();

    // Per API key: named by the key's name and owner, its whole cost its share.
    await page.locator('[data-section="spend-controls"] button[data-value="caller_key"]').click();
    await page.waitForFunction(() => location.hash === '#/spend?by=caller_key&days=30');
    const keyRow = page.locator(`[data-section="spend-top"] tr[data-group="${created.id}"]`);
    await keyRow.waitFor();
    assert.match(await keyRow.innerText(), inOrder('spend-test', 'music-app', created.masked_key));
    assert.equal(await keyRow.locator('[data-cost]').innerText(), form.money(dollars(2 * perCall)));
    assert.equal(await page.locator('[data-section="spend-top"] tbody tr').count(), 1, 'the JWT calls have no API key');

    // Per model, over 7 days; Back returns to the keys.
    await page.locator('[data-section="spend-controls"] button[data-value="model"]').click();
    await page.locator('[data-section="spend-controls"] button[data-value="7"]').click();
    await page.waitForFunction(() => location.hash === '#/spend?by=model&days=7');
    await page.locator('[data-section="spend-top"] tr[data-group="demo/echo"]').waitFor();
    const byModel = await adminApi('/api/admin/ai-stats/spend?by=model&from=' + new Date(Date.now() - 6 * 86_400_000).toISOString().slice(0, 10));
    const echo = byModel.top.find((g) => g.group === 'demo/echo');
    assert.equal(await cost('demo/echo'), form.money(dollars(echo.usage.cost_micros)));
    assert.equal(echo.usage.cost_micros, COST_MICROS + 2 * perCall, 'the scenario\'s calls and the key\'s two');
    await shot('spend-1280');
    await page.goBack();
    await page.waitForFunction(() => location.hash === '#/spend?by=model&days=30');
    await page.goBack();
    await page.waitForFunction(() => location.hash === '#/spend?by=caller_key&days=30');
    await keyRow.waitFor();
    await page.setViewportSize({ width: 390, height: 900 });
    try {
      await idle();
      await noHorizontalOverflow('spend at 390 px');
      await noClippedControls('spend at 390 px');
      await shot('spend-390');
    } finally {
      await page.setViewportSize({ width: 1280, height: 900 });
    }
    await adminApi(`/api/admin/api-keys/${created.id}`, { method: 'DELETE' }).catch(() => {});
  });
}
