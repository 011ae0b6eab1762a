// Dashboard: today's, the last 7 and 30 days' figures (from /ai-stats/dashboard), daily requests
// and cost per provider (from /ai-stats/usage/trend, drawn with uPlot), the top models, and the
// keys that need a look: near a limit, or not `normal` (each with a Validate button right there).

import { api, seg } from './api.js';
import { DAY_STEPS, WHOLE_STEPS, lineChart } from './charts.js';
import { activeBadge, clear, errorBox, h, pageHeader, spinner, statusBadge, table, toast } from './dom.js';
import {
  fmtDate, fmtDateTime, fmtDuration, fmtMoney, fmtNumber, fmtPercent, fmtRelative, fmtTime, t,
} from './i18n.js';

const PERIODS = ['today', 'last_7_days', 'last_30_days'];
const COLORS = ['#4f46e5', '#0891b2', '#d97706', '#db2777', '#16a34a', '#7c3aed', '#dc2626', '#475569', '#0d9488', '#9333ea'];
const HIDE_STEPS = 'maestro.gettingStarted.hidden';

/**
 * A provider's colour in the charts, from its code alone (FNV-1a): the same provider keeps its
 * colour whatever other providers come or go.
 */
export function colorOf(code) {
  let hash = 0x811c9dc5;
  for (const ch of String(code)) {
    hash ^= ch.codePointAt(0);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return COLORS[hash % COLORS.length];
}

// One card per figure (label: `dashboard.kpi.<key>`): today large, the 7- and 30-day figures under it.
const KPIS = [
  { key: 'requests', value: (u) => fmtNumber(u.requests), note: (u) => t('dashboard.kpi.requestsNote', { count: fmtNumber(u.errors) }) },
  { key: 'success_rate', value: (u) => fmtPercent(u.success_rate), note: (u) => t('dashboard.kpi.success_rateNote', { count: fmtNumber(u.successes) }) },
  {
    key: 'tokens', value: (u) => fmtNumber(u.total_tokens),
    note: (u) => t('dashboard.kpi.tokensNote', { input: fmtNumber(u.prompt_tokens), output: fmtNumber(u.completion_tokens) }),
  },
  { key: 'cost', value: (u) => fmtMoney(u.cost_micros), note: (u) => t('fmt.micros', { value: fmtNumber(u.cost_micros) }) },
  { key: 'p50', value: (u) => fmtDuration(u.latency_ms_p50, true), note: (u) => t('dashboard.kpi.p50Note', { value: fmtDuration(u.latency_ms_avg) }) },
  { key: 'p95', value: (u) => fmtDuration(u.latency_ms_p95, true), note: () => t('dashboard.kpi.p95Note') },
  { key: 'p99', value: (u) => fmtDuration(u.latency_ms_p99, true), note: () => t('dashboard.kpi.p99Note') },
  {
    key: 'cache', value: (u) => fmtNumber(u.cache_hits ?? 0),
    note: (u) => t('dashboard.kpi.cacheNote', { rate: fmtPercent(u.cache_hit_rate ?? 0), saved: fmtMoney(u.saved_micros ?? 0) }),
  },
];

export function render(main) {
  const charts = [];
  let trendDays = 7;
  let data = null;
  const body = h('div', { class: 'stack' }, spinner());
  const stamp = h('span', { class: 'muted small' });
  main.append(pageHeader(t('dashboard.title'), t('dashboard.help'), stamp,
    h('button', { type: 'button', class: 'ghost', dataset: { action: 'refresh' }, onclick: () => load() }, t('dashboard.refresh'))), body);

  function destroyCharts() {
    while (charts.length) charts.pop().destroy();
  }

  async function load() {
    destroyCharts();
    clear(body, spinner(t('dashboard.loading')));
    // The catalog and the caller keys are read for the first steps only: without them the
    // dashboard still shows its figures.
    const optional = (path) => api(path).then((r) => r.data, () => null);
    let providers;
    let callerKeys;
    try {
      [data, providers, callerKeys] = await Promise.all([
        api('/api/admin/ai-stats/dashboard'), optional('/api/admin/ai-providers'), optional('/api/admin/api-keys'),
      ]);
    } catch (e) {
      clear(body, errorBox(e, load));
      return;
    }
    stamp.textContent = t('dashboard.updated', { time: fmtDateTime(data.generated_at) });
    const trend = h('section', { class: 'card' });
    const keyCount = providers ? providers.filter((p) => p.kind !== 'demo').reduce((n, p) => n + p.keys.length, 0) : null;
    clear(body, firstSteps(data, providers, callerKeys, load), kpis(data), trend,
      h('div', { class: 'grid-2' }, topModels(data.top_models), keyHealth(data, load, keyCount)));
    loadTrend(trend);
  }

  async function loadTrend(card) {
    destroyCharts();
    const period = trendDays === 7 ? data.last_7_days : data.last_30_days;
    const switcher = h('div', { class: 'segmented', role: 'group', 'aria-label': t('dashboard.trendRange') },
      [7, 30].map((days) => h('button', {
        type: 'button', 'aria-pressed': String(days === trendDays),
        onclick: () => { trendDays = days; loadTrend(card); },
      }, t('dashboard.days', { count: fmtNumber(days) }))));
    const content = h('div', { class: 'charts' }, spinner(t('dashboard.trendLoading')));
    clear(card, h('div', { class: 'card-head' }, h('h2', {}, t('dashboard.trendTitle')), switcher), content);
    let trend;
    try {
      trend = await api('/api/admin/ai-stats/usage/trend', { query: { from: period.from, to: period.to, group_by: 'provider' } });
    } catch (e) {
      clear(content, errorBox(e, () => loadTrend(card)));
      return;
    }
    if (!trend.series.length) {
      clear(content, h('p', { class: 'empty' }, t('dashboard.trendEmpty')));
      return;
    }
    const requestsBox = h('figure', { class: 'chart', 'data-chart': 'requests' }, h('figcaption', {}, t('dashboard.requestsPerDay')));
    const costBox = h('figure', { class: 'chart', 'data-chart': 'cost' }, h('figcaption', {}, t('dashboard.costPerDay')));
    clear(content, requestsBox, costBox);
    charts.push(chart(requestsBox, trend, (u) => u.requests, fmtNumber));
    charts.push(chart(costBox, trend, (u) => u.cost_micros, fmtMoney));
  }

  load();
  return destroyCharts;
}

/**
 * The first steps of a new install, each ticked off from what exists: a provider with a key,
 * a priced active model of it, a key for callers, a first call. Shown until all are done (or
 * hidden for this browser).
 */
function firstSteps(data, providers, callerKeys, reload) {
  if (!providers || !callerKeys) return null;
  const own = providers.filter((p) => p.kind !== 'demo');
  const steps = [
    ['provider', own.some((p) => p.keys.length > 0), '#/providers'],
    // Of a provider with a key: the shipped catalog's priced models alone serve no call.
    ['models', own.some((p) => p.keys.length > 0
      && p.models.some((m) => m.is_active && (m.prices.input_price > 0 || m.prices.output_price > 0))), '#/models'],
    ['apikey', callerKeys.length > 0, '#/apikeys'],
    ['call', data.last_30_days.usage.requests > 0, '#/logs'],
  ];
  const done = steps.filter(([, ok]) => ok).length;
  let hidden = false;
  try {
    hidden = localStorage.getItem(HIDE_STEPS) === 'yes';
  } catch {
    // Storage disabled: shown.
  }
  if (done === steps.length || hidden) return null;
  const hide = h('button', { type: 'button', class: 'ghost small', dataset: { action: 'hide-steps' } }, t('dashboard.steps.hide'));
  hide.addEventListener('click', () => {
    try {
      localStorage.setItem(HIDE_STEPS, 'yes');
    } catch {
      // Not remembered: hidden until the next load.
    }
    reload();
  });
  return h('section', { class: 'card steps', 'data-section': 'getting-started', 'aria-labelledby': 'steps-title' },
    h('div', { class: 'card-head' },
      h('div', { class: 'title' },
        h('h2', { id: 'steps-title' }, t('dashboard.steps.title')),
        h('span', { class: 'muted small', dataset: { done: String(done) } }, t('dashboard.steps.progress', { done: fmtNumber(done), count: fmtNumber(steps.length) }))),
      hide),
    h('ol', { class: 'step-list' }, steps.map(([id, ok, href]) => h('li', { class: ['step', ok && 'step-done'], dataset: { step: id, done: String(ok) } },
      h('span', { class: 'step-mark', 'aria-hidden': 'true' }, ok ? '✓' : ''),
      h('span', { class: 'step-text' },
        h('a', { href }, t(`dashboard.steps.${id}`)),
        h('small', { class: 'muted block' }, ok ? t('dashboard.steps.done') : t(`dashboard.steps.${id}Hint`)))))));
}

function kpis(data) {
  return h('section', { class: 'kpis', 'aria-label': t('dashboard.figures') }, KPIS.map((k) => {
    const today = data.today.usage;
    return h('div', { class: 'card kpi', dataset: { kpi: k.key } },
      h('div', { class: 'kpi-label' }, t(`dashboard.kpi.${k.key}`)),
      h('div', { class: 'kpi-value', dataset: { period: 'today' }, title: t('dashboard.todayUtc') }, k.value(today)),
      h('div', { class: 'kpi-note muted' }, t('dashboard.todayNote', { note: k.note(today) })),
      h('dl', { class: 'kpi-periods' }, PERIODS.slice(1).map((key) => [
        h('dt', {}, t(`dashboard.period.${key}`)),
        h('dd', { dataset: { period: key }, title: `${fmtDate(data[key].from)} – ${fmtDate(data[key].to)}` }, k.value(data[key].usage)),
      ])));
  }));
}

function topModels(models) {
  return h('section', { class: 'card', 'data-section': 'top-models' },
    h('div', { class: 'card-head' }, h('h2', {}, t('dashboard.topModels')), h('span', { class: 'muted small' }, t('dashboard.last7Days'))),
    table([
      { label: t('dashboard.col.model'), cell: (m) => h('span', { class: 'mono' }, `${m.provider_code}/${m.model_code}`) },
      { label: t('dashboard.col.requests'), class: 'num', cell: (m) => fmtNumber(m.requests) },
      { label: t('dashboard.col.failed'), class: 'num', cell: (m) => fmtNumber(m.errors) },
      { label: t('dashboard.col.tokens'), class: 'num', cell: (m) => fmtNumber(m.total_tokens) },
      { label: t('dashboard.col.cost'), class: 'num', cell: (m) => fmtMoney(m.cost_micros) },
    ], models, { cards: true, empty: t('dashboard.topEmpty') }));
}

const LIMITS = ['rpm', 'tpm', 'rpd'];

function cooldown(key) {
  if (key.cooldown_until === null || key.cooldown_until === undefined) {
    return key.status === 'invalid' ? t('dashboard.untilValidated') : '—';
  }
  if (key.cooldown_until <= Date.now()) return t('dashboard.cooldownEnded', { when: fmtRelative(key.cooldown_until) });
  return t('dashboard.cooldownUntil', { time: fmtTime(key.cooldown_until), when: fmtRelative(key.cooldown_until) });
}

/** Validates a key from the dashboard: the outcome in a toast, then the dashboard again. */
async function validate(button, key, reload) {
  button.disabled = true;
  try {
    const r = await api(`/api/admin/ai-providers/keys/${seg(key.id)}/validate`, { method: 'POST' });
    const http = r.http_status ? t('providers.http', { status: r.http_status }) : '';
    const id = { valid: 'providers.valid', invalid: 'providers.invalid', rate_limited: 'providers.rateLimited', unreachable: 'providers.unreachable' }[r.outcome];
    toast(t(id, { name: key.key_name, http, count: fmtNumber(r.models_listed ?? 0), message: r.message || t('providers.noMessage') }),
      r.valid ? 'ok' : 'warn');
    await reload();
  } catch (e) {
    toast(e.message, 'error');
    button.disabled = false;
  }
}

function keyHealth(data, reload, keyCount) {
  const meter = (percentUsed) => {
    const bar = h('span', { class: 'meter-bar' });
    bar.style.width = `${Math.min(percentUsed, 100)}%`; // CSSOM, allowed by the CSP (no style attribute)
    return h('span', { class: ['meter', percentUsed >= 100 && 'meter-full'] }, bar);
  };
  return h('section', { class: 'card', 'data-section': 'key-health' },
    h('div', { class: 'card-head' }, h('h2', {}, t('dashboard.nearLimits'))),
    table([
      { label: t('dashboard.col.key'), cell: (k) => h('span', {}, k.key_name, h('small', { class: 'muted block' }, k.provider_code)) },
      // The API's short name (rpm, tpm, rpd), spelled out on hover.
      { label: t('dashboard.col.limit'), cell: (k) => h('span', { title: LIMITS.includes(k.limit) ? t(`limitName.${k.limit}`) : null }, k.limit) },
      { label: t('dashboard.col.used'), class: 'num', cell: (k) => `${fmtNumber(k.used)} / ${fmtNumber(k.limit_value)}` },
      { label: '', cell: (k) => h('span', { class: 'meter-cell' }, meter(k.percent), fmtPercent(k.percent / 100, 0)) },
    ], data.keys_near_limits, { cards: true, empty: keyCount === 0 ? t('dashboard.noKeys') : t('dashboard.nearEmpty') }),
    h('div', { class: 'card-head' }, h('h2', {}, t('dashboard.notNormal'))),
    table([
      { label: t('dashboard.col.key'), cell: (k) => h('span', {}, k.key_name, h('small', { class: 'muted block' }, k.provider_code)) },
      { label: t('dashboard.col.status'), cell: (k) => statusBadge(k.status) },
      { label: t('dashboard.col.active'), cell: (k) => activeBadge(k.is_active) },
      { label: t('dashboard.col.cooldown'), cell: (k) => cooldown(k) },
      {
        label: '', class: 'row-actions', cell: (k) => {
          const button = h('button', { type: 'button', class: 'ghost small', dataset: { action: 'validate' } }, t('providers.validate'));
          button.addEventListener('click', () => validate(button, k, reload));
          return button;
        },
      },
    ], data.keys_not_normal, {
      cards: true,
      // "Every key is normal" only where there are keys.
      empty: keyCount === 0 ? t('dashboard.noKeys') : t('dashboard.notNormalEmpty'),
      rowData: (k) => ({ key: k.id }),
    }));
}

// ---- Charts ---------------------------------------------------------------------------------

const dayLabel = (secs) => fmtDate(secs * 1000, { month: 'short', day: 'numeric' });

/** A line per provider of one figure of the trend (whole numbers: requests, micro-USD). */
function chart(box, trend, pick, format) {
  return lineChart(box, {
    height: 220,
    x: { label: t('dashboard.chartDay'), format: dayLabel, steps: DAY_STEPS },
    y: { format, steps: WHOLE_STEPS },
    lines: trend.series.map((s) => ({ label: s.provider || t('dashboard.chartAll'), color: colorOf(s.provider || ''), fill: true })),
    data: [trend.series[0].points.map((p) => Date.parse(`${p.date}T00:00:00Z`) / 1000), ...trend.series.map((s) => s.points.map((p) => pick(p.usage)))],
  });
}
