// The admin console in a real headless Chromium against the local runner (started by run.sh).
//
// The tests run in order on one page, as one admin session would: sign in; add a provider (a
// fake upstream served here) and two keys, validate them, sync the models; price the offline
// `demo/echo` model and activate a synced one; deactivate a key and meet a stale version; then a
// known set of calls, and the dashboard and logs must show exactly them. Any console error,
// page error or failed request that a test did not announce fails that test.

import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.MAESTRO_URL;
const ADMIN = process.env.MAESTRO_ADMIN_TOKEN;
const CALLER = process.env.MAESTRO_CALLER_TOKEN;
const ARTIFACTS = process.env.MAESTRO_CONSOLE_ARTIFACTS || path.join(os.tmpdir(), 'console-artifacts');
assert.ok(BASE && ADMIN && CALLER, 'run through tests/console/run.sh (MAESTRO_URL and the tokens)');

// Secrets typed into the console: they must never be on the page again.
const PRIMARY_SECRET = 'sk-ok-console-primary-7f3a9c';
const SPARE_SECRET = 'sk-revoked-console-spare-42d1';

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
let userDir;
let context;
let page;
const problems = [];
let expected = [];

/** The fake provider: `GET /v1/models` for `sk-ok-…` keys (401 otherwise), a 400 for any chat. */
function startUpstream() {
  const server = http.createServer((req, res) => {
    req.resume();
    const key = (req.headers.authorization || '').replace(/^Bearer /, '');
    const send = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
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

async function adminApi(pathname, options = {}) {
  const response = await fetch(`${BASE}${pathname}`, {
    ...options,
    headers: { Authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', ...(options.headers || {}) },
  });
  const body = await response.json();
  assert.ok(response.ok, `${pathname}: ${response.status} ${JSON.stringify(body)}`);
  return body;
}

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
  for (const secret of [PRIMARY_SECRET, SPARE_SECRET, ADMIN, PROMPT]) {
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

before(async () => {
  upstream = await startUpstream();
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'maestro-console-chromium-'));
  context = await chromium.launchPersistentContext(userDir, {
    executablePath: process.env.MAESTRO_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
    timezoneId: 'UTC',
    locale: 'en-US',
  });
  page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(10_000);
  page.on('console', (msg) => {
    if (msg.type() === 'error') problem(`console.error: ${msg.text()}`);
  });
  page.on('pageerror', (error) => problem(`page error: ${error.message}`));
  page.on('requestfailed', (request) => problem(`request failed: ${request.method()} ${request.url()} (${request.failure()?.errorText})`));
  // Nothing but Maestro itself: any other origin is a failure too.
  page.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith(BASE) && !url.startsWith('data:') && !url.startsWith('about:')) problem(`request to another origin: ${url}`);
  });
});

/** A test whose failure leaves a screenshot of the page as it was, next to the others. */
function uiTest(name, fn) {
  test(name, async () => {
    try {
      await fn();
    } catch (error) {
      const file = `failed-${name.split(':')[0].replace(/\W+/g, '-')}.png`;
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

uiTest('sign-in: a caller token is refused, the #token= link signs in and leaves the address bar', async () => {
  await page.goto(`${BASE}/admin/`);
  await page.locator('#signin-form').waitFor();
  assert.equal(await page.locator('#shell').isVisible(), false);

  await expecting([/status of 403/], async () => {
    await page.fill('#signin-token', CALLER);
    await page.click('#signin-form button[type=submit]');
    await page.locator('#signin-error').waitFor();
    await idle();
  });
  assert.match(await text('#signin-error'), /not an admin token: .*maestro:admin/);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused token is not kept');

  await page.goto('about:blank');
  await page.goto(`${BASE}/admin/#token=${ADMIN}`);
  await page.locator('[data-kpi="requests"]').waitFor();
  assert.ok(!page.url().includes('token='), `the token left the address bar: ${page.url()}`);
  assert.ok(page.url().endsWith('/admin/#/dashboard'), page.url());
  assert.equal(await page.evaluate(() => sessionStorage.getItem('maestro.admin.token')), ADMIN);
  assert.equal(await text('[data-kpi="requests"] [data-period="today"]'), '0');

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
  await page.click('text=Add provider');
  await page.fill('#f-provider_code', 'fakeup');
  await page.fill('#f-provider_name', 'Fake upstream');
  await page.selectOption('#f-kind', 'openai_compatible');
  await page.fill('#f-base_url', `http://127.0.0.1:${upstream.address().port}/v1`);
  await page.click('dialog button[type=submit]');
  const card = page.locator('section[data-provider="fakeup"]');
  await card.waitFor();
  assert.match(await card.innerText(), /Fake upstream/);

  for (const [name, secret, rpd] of [['primary', PRIMARY_SECRET, '2'], ['spare', SPARE_SECRET, '']]) {
    await card.locator('button', { hasText: 'Add key' }).click();
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
  await noSecretOnPage();

  await card.locator('tr[data-key="fakeup-primary"] button', { hasText: 'Validate' }).click();
  await card.locator('.outcome .notice-ok').waitFor();
  assert.match(await card.locator('.outcome').innerText(), /primary is valid: the provider listed 2 models/);

  await card.locator('tr[data-key="fakeup-spare"] button', { hasText: 'Validate' }).click();
  await card.locator('.outcome .notice-error').waitFor();
  assert.match(await card.locator('.outcome').innerText(), /spare was refused \(HTTP 401\): .*Incorrect API key/);
  await card.locator('tr[data-key="fakeup-spare"] .badge', { hasText: 'invalid' }).waitFor();

  await card.locator('button', { hasText: 'Sync models' }).click();
  await card.locator('.outcome .notice-info').waitFor();
  const report = await card.locator('.outcome').innerText();
  assert.match(report, /listed 2 models/);
  assert.match(report, /Added 2: fake-small, fake-large/);
  assert.match(await card.innerText(), /0 active of 2/);
  await noSecretOnPage();
});

uiTest('models: price demo/echo in dollars per million tokens and activate a synced model', async () => {
  await view('models');
  const echo = page.locator('tr[data-model="demo/echo"]');
  await echo.waitFor();
  await echo.locator('button', { hasText: 'Edit' }).click();
  await page.fill('#f-input_price', '3');
  await page.fill('#f-output_price', '15');
  await page.click('dialog button[type=submit]');
  await page.locator('#toast', { hasText: 'demo/echo saved.' }).waitFor();
  await echo.locator('[data-prices]', { hasText: '$3.00 / $15.00' }).waitFor();
  const [model] = (await adminApi('/api/admin/ai-models?provider=demo')).data;
  assert.deepEqual([model.prices.input_price, model.prices.output_price], [3_000_000, 15_000_000]);

  await page.selectOption('#models-provider', 'fakeup');
  const small = page.locator('tr[data-model="fakeup/fake-small"]');
  await small.getByRole('button', { name: 'Activate', exact: true }).click();
  await small.getByRole('button', { name: 'Deactivate', exact: true }).waitFor();
  assert.match(await small.innerText(), /\bactive\b/);
  assert.equal(await page.locator('tr[data-model]').count(), 2, 'the provider filter keeps fakeup only');
});

uiTest('keys: deactivate one; a stale version is reloaded and said so', async () => {
  await view('providers');
  const card = page.locator('section[data-provider="fakeup"]');
  const spare = card.locator('tr[data-key="fakeup-spare"]');
  await spare.getByRole('button', { name: 'Deactivate', exact: true }).click();
  await spare.getByRole('button', { name: 'Activate', exact: true }).waitFor();
  assert.match(await spare.innerText(), /inactive/);
  const keys = (await adminApi('/api/admin/ai-providers/fakeup/keys')).data;
  assert.equal(keys.find((k) => k.id === 'fakeup-spare').is_active, false);

  // Someone else changes the primary key after the page read it.
  const primary = keys.find((k) => k.id === 'fakeup-primary');
  await adminApi('/api/admin/ai-providers/keys/fakeup-primary', { method: 'PUT', body: JSON.stringify({ version: primary.version, priority: 5 }) });
  await expecting([/status of 409/], async () => {
    await card.locator('tr[data-key="fakeup-primary"]').getByRole('button', { name: 'Deactivate', exact: true }).click();
    await page.locator('#toast', { hasText: 'The page now shows the latest version.' }).waitFor();
    assert.match(await text('#toast'), /fakeup-primary was changed by someone else/);
    await idle();
  });
  const row = page.locator('section[data-provider="fakeup"] tr[data-key="fakeup-primary"]');
  await row.locator('td', { hasText: /^5$/ }).waitFor();
  assert.match(await row.innerText(), /\bactive\b/, 'the stale click changed nothing');
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
  await page.click('text=Refresh');
  await idle();
  await page.locator('figure[data-chart="cost"] canvas').waitFor();
  const kpi = (name, period) => text(`[data-kpi="${name}"] [data-period="${period}"]`);
  for (const period of ['today', 'last_7_days', 'last_30_days']) {
    assert.equal(await kpi('requests', period), '9', period);
    assert.equal(await kpi('success_rate', period), '77.8%', period); // 7 of 9
    assert.equal(await kpi('tokens', period), '119', period); // 7 × (6 + 11)
    assert.equal(await kpi('cost', period), '$0.001281', period);
    assert.match(await kpi('p50', period), /^≤ \d+ m?s$/, period);
    assert.match(await kpi('p95', period), /^≤ \d+ m?s$/, period);
  }
  assert.equal(COST_MICROS, 1281);
  assert.match(await text('[data-kpi="requests"] .kpi-note'), /2 failed/);
  assert.match(await text('[data-kpi="tokens"] .kpi-note'), /42 in · 77 out/);

  const top = await page.locator('[data-section="top-models"] tbody tr').allInnerTexts();
  assert.deepEqual(top.map((row) => row.split('\t').map((c) => c.trim())), [
    ['demo/echo', '7', '0', '119', '$0.001281'],
    ['fakeup/fake-small', '2', '2', '0', '$0.00'],
  ]);
  const health = page.locator('[data-section="key-health"]');
  const near = await health.locator('table').first().locator('tbody tr').allInnerTexts();
  assert.equal(near.length, 1, near.join('\n'));
  assert.match(near[0], /primary[\s\S]*fakeup[\s\S]*rpd[\s\S]*2 \/ 2[\s\S]*100%/);
  const notNormal = await health.locator('table').nth(1).locator('tbody tr').allInnerTexts();
  assert.equal(notNormal.length, 1, notNormal.join('\n'));
  assert.match(notNormal[0], /spare[\s\S]*fakeup[\s\S]*invalid[\s\S]*inactive[\s\S]*until validated/);
  const legend = await page.locator('figure[data-chart="requests"] .u-legend').innerText();
  assert.match(legend, /demo/);
  assert.match(legend, /fakeup/);

  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-1280.png'), fullPage: true });
  await noHorizontalOverflow('dashboard at 1280');
  for (const name of ['providers', 'models', 'logs']) {
    await view(name);
    await noHorizontalOverflow(`${name} at 1280`);
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}-1280.png`), fullPage: true });
  }
  await view('dashboard');

  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300); // the charts follow their box's new width
  await noHorizontalOverflow('dashboard at 390');
  const chartWidth = await page.locator('figure[data-chart="cost"] canvas').evaluate((c) => c.getBoundingClientRect().width);
  assert.ok(chartWidth <= 390, `the chart is ${chartWidth}px wide`);
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-390.png'), fullPage: true });
  for (const name of ['providers', 'models', 'logs']) {
    await view(name);
    await noHorizontalOverflow(`${name} at 390`);
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}-390.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  await noSecretOnPage();
});

uiTest('logs: filter, page, and a call’s details without secrets or prompt text', async () => {
  await view('logs');
  const rows = page.locator('[data-request]');
  const apply = () => page.click('form.filters button[type=submit]');
  const settle = async (count) => {
    await idle();
    await page.locator('.pager').waitFor();
    assert.equal(await rows.count(), count, (await rows.allInnerTexts()).join('\n'));
  };
  await settle(9);

  await page.selectOption('#logs-status', 'error');
  await apply();
  await settle(2);
  for (const row of await rows.allInnerTexts()) assert.match(row, /400[\s\S]*fakeup\/fake-small[\s\S]*console-caller/);

  await page.selectOption('#logs-status', 'success');
  await page.fill('#logs-model', 'echo');
  await apply();
  await settle(7);
  for (const row of await rows.allInnerTexts()) assert.match(row, /200[\s\S]*demo\/echo[\s\S]*6 \/ 11[\s\S]*\$0\.000183/);

  await page.click('form.filters button:has-text("Reset")');
  await settle(9);
  await page.selectOption('#logs-limit', '5');
  await apply();
  await settle(5);
  await page.click('text=Older →');
  await settle(4);
  assert.match(await text('.pager'), /Page 2 · 4 calls/);
  assert.equal(await page.locator('.pager button', { hasText: 'Older' }).isDisabled(), true);
  await page.click('text=← Newer');
  await settle(5);

  await page.selectOption('#logs-status', 'error');
  await apply();
  await settle(2);
  await rows.first().click();
  const dialog = page.locator('dialog[aria-label="Call details"]');
  await dialog.waitFor();
  const details = await dialog.innerText();
  assert.match(details, /Provider\s+fakeup/);
  assert.match(details, /error \(HTTP 400\)/);
  assert.match(details, /The fake upstream refuses every chat request/);
  assert.match(details, /Key\s+fakeup-primary/);
  await page.screenshot({ path: path.join(ARTIFACTS, 'log-details-1280.png') });
  await noSecretOnPage();
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
});
