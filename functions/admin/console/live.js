// Live: the last 15 minutes per minute (calls and errors, p50/p95 latency, tokens, cost) from
// /ai-stats/live, refreshed every few seconds while the tab is in sight, with the alerts firing
// now and the latest alert history (from /ai-alerts). The charts are drawn once and fed new data
// on each refresh, so nothing flickers and a hover survives the refresh.

import { api } from './api.js';
import { lineChart } from './charts.js';
import { badge, clear, errorBox, h, pageHeader, spinner, table } from './dom.js';
import { colorOf } from './dashboard.js';
import { fmtDate, fmtDateTime, fmtDuration, fmtMoney, fmtNumber, fmtPercent, fmtRelative, fmtTime, t } from './i18n.js';

export const REFRESH_MS = 5000;
const MINUTES = 15;
const HISTORY_SHOWN = 10;

const KPIS = [
  { key: 'requests', value: (u) => fmtNumber(u.requests), note: (u) => t('live.kpi.requestsNote', { count: fmtNumber(u.errors) }) },
  { key: 'error_rate', value: (u) => fmtPercent(u.requests ? u.errors / u.requests : null), note: (u) => t('live.kpi.error_rateNote', { count: fmtNumber(u.successes) }) },
  { key: 'p50', value: (u) => fmtDuration(u.latency_ms_p50, true), note: (u) => t('dashboard.kpi.p50Note', { value: fmtDuration(u.latency_ms_avg) }) },
  { key: 'p95', value: (u) => fmtDuration(u.latency_ms_p95, true), note: () => t('dashboard.kpi.p95Note') },
  {
    key: 'tokens', value: (u) => fmtNumber(u.total_tokens),
    note: (u) => t('dashboard.kpi.tokensNote', { input: fmtNumber(u.prompt_tokens), output: fmtNumber(u.completion_tokens) }),
  },
  { key: 'cost', value: (u) => fmtMoney(u.cost_micros), note: (u) => t('fmt.micros', { value: fmtNumber(u.cost_micros) }) },
];

// Each chart: its figures per minute, drawn as lines in fixed colours.
const CHARTS = [
  { key: 'calls', format: fmtNumber, lines: [['requests', (u) => u.requests, '#4f46e5'], ['errors', (u) => u.errors, '#dc2626']] },
  {
    key: 'latency', format: (v) => fmtDuration(v),
    lines: [['p50', (u) => u.latency_ms_p50, '#0891b2'], ['p95', (u) => u.latency_ms_p95, '#d97706']],
  },
  { key: 'cost', format: fmtMoney, lines: [['cost', (u) => u.cost_micros, '#16a34a']] },
  { key: 'tokens', format: fmtNumber, lines: [['tokens', (u) => u.total_tokens, '#7c3aed']] },
];

export function render(main) {
  let timer = null;
  let paused = false;
  let charts = null;
  let loading = false;
  const stamp = h('span', { class: 'muted small', dataset: { field: 'updated' }, 'aria-live': 'off' });
  const pause = h('button', { type: 'button', class: 'ghost', 'aria-pressed': 'false', dataset: { action: 'pause' } }, t('live.pause'));
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.setAttribute('aria-pressed', String(paused));
    pause.textContent = t(paused ? 'live.resume' : 'live.pause');
    if (!paused) load();
  });
  const figures = h('section', { class: 'kpis kpis-6', 'aria-label': t('live.figures') });
  const chartsCard = h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', {}, t('live.perMinute'))));
  const chartBox = h('div', { class: 'charts' });
  chartsCard.append(chartBox);
  const providers = h('section', { class: 'card', dataset: { section: 'live-providers' } });
  const alerts = h('section', { class: 'card', dataset: { section: 'live-alerts' } });
  const body = h('div', { class: 'stack' }, spinner(t('live.loading')));
  main.append(pageHeader(t('live.title'), t('live.help', { minutes: fmtNumber(MINUTES) }), stamp, pause), body);

  function destroyCharts() {
    if (charts) for (const c of charts) c.destroy();
    charts = null;
  }

  async function load() {
    if (loading) return;
    loading = true;
    let live;
    let rules;
    try {
      // Alerts are optional here: without them the figures still show.
      [live, rules] = await Promise.all([
        api('/api/admin/ai-stats/live', { query: { minutes: MINUTES } }),
        api('/api/admin/ai-alerts').catch(() => null),
      ]);
    } catch (e) {
      destroyCharts();
      clear(body, errorBox(e, load));
      return;
    } finally {
      loading = false;
    }
    if (!body.contains(figures)) clear(body, figures, chartsCard, h('div', { class: 'grid-2' }, providers, alerts));
    stamp.textContent = t('live.updated', { time: fmtTime(live.generated_at) });
    stamp.dataset.generatedAt = String(live.generated_at);
    showFigures(figures, live);
    showCharts(live);
    showProviders(providers, live);
    showAlerts(alerts, rules);
  }

  function showCharts(live) {
    const xs = live.points.map((p) => Date.parse(`${p.date}:00Z`) / 1000);
    if (!charts) {
      clear(chartBox);
      charts = CHARTS.map((c) => {
        const box = h('figure', { class: 'chart', dataset: { chart: c.key } }, h('figcaption', {}, t(`live.chart.${c.key}`)));
        chartBox.append(box);
        return minuteChart(box, c);
      });
    }
    charts.forEach((chart, i) => chart.update([xs, ...CHARTS[i].lines.map(([, pick]) => live.points.map((p) => pick(p.usage)))]));
  }

  load();
  timer = setInterval(() => {
    if (!paused && !document.hidden) load();
  }, REFRESH_MS);
  return () => {
    clearInterval(timer);
    destroyCharts();
  };
}

function showFigures(box, live) {
  clear(box, KPIS.map((k) => h('div', { class: 'card kpi', dataset: { kpi: k.key } },
    h('div', { class: 'kpi-label' }, t(`live.kpi.${k.key}`)),
    h('div', { class: 'kpi-value', dataset: { value: '' } }, k.value(live.total)),
    h('div', { class: 'kpi-note muted' }, k.note(live.total)))));
}

function showProviders(box, live) {
  clear(box, h('div', { class: 'card-head' }, h('h2', {}, t('live.providers'))),
    table([
      { label: t('live.col.provider'), cell: (p) => h('span', { class: 'provider-name' }, h('span', { class: 'swatch', 'aria-hidden': 'true', dataset: { color: colorOf(p.provider) } }), p.provider) },
      { label: t('live.col.requests'), class: 'num', cell: (p) => fmtNumber(p.usage.requests) },
      { label: t('live.col.errors'), class: 'num', cell: (p) => fmtNumber(p.usage.errors) },
      { label: t('live.col.p95'), class: 'num', cell: (p) => fmtDuration(p.usage.latency_ms_p95, true) },
      { label: t('live.col.cost'), class: 'num', cell: (p) => fmtMoney(p.usage.cost_micros) },
    ], live.providers, { cards: true, empty: t('live.quiet', { minutes: fmtNumber(MINUTES) }), rowData: (p) => ({ provider: p.provider }) }));
  // The swatch's colour through the CSSOM (the CSP allows no style attribute).
  for (const swatch of box.querySelectorAll('.swatch')) swatch.style.background = swatch.dataset.color;
}

const EVENT_KIND = { firing: 'bad', reminder: 'warn', resolved: 'ok' };

function showAlerts(box, rules) {
  const head = h('div', { class: 'card-head' }, h('h2', {}, t('live.alerts')), h('a', { href: '#/alerts', class: 'small' }, t('live.manageAlerts')));
  if (!rules) {
    clear(box, head, h('p', { class: 'empty' }, t('live.alertsUnavailable')));
    return;
  }
  const active = rules.data.flatMap((r) => r.instances.map((i) => ({ ...i, kind: r.kind })));
  active.sort((a, b) => Number(b.firing) - Number(a.firing) || a.since_ms - b.since_ms);
  clear(box, head,
    h('h3', { class: 'subhead' }, t('live.activeNow')),
    table([
      { label: t('live.col.state'), cell: (i) => h('span', { dataset: { state: i.firing ? 'firing' : 'pending' } }, badge(t(i.firing ? 'alerts.state.firing' : 'alerts.state.pending'), i.firing ? 'bad' : 'warn')) },
      { label: t('live.col.rule'), cell: (i) => h('span', {}, h('span', { class: 'mono strong' }, i.rule), i.instance && i.instance !== 'all' ? h('small', { class: 'muted block mono' }, i.instance) : null) },
      { label: t('live.col.value'), cell: (i) => h('span', { class: 'mono' }, i.value) },
      { label: t('live.col.since'), cell: (i) => h('span', { title: fmtDateTime(i.since_ms) }, fmtRelative(i.since_ms)) },
    ], active, {
      cards: true,
      empty: rules.data.length ? t('live.allClear') : t('live.noRules'),
      rowData: (i) => ({ rule: i.rule, instance: i.instance }),
    }),
    h('h3', { class: 'subhead' }, t('live.history')),
    historyTable(rules.history.slice(0, HISTORY_SHOWN)));
}

/** Alert history entries, newest first: the event, when, the rule and what it said, who took it. */
export function historyTable(entries) {
  return table([
    { label: t('alerts.col.event'), cell: (e) => h('span', { dataset: { event: e.event } }, badge(t(`alerts.event.${e.event}`), EVENT_KIND[e.event] || 'neutral')) },
    { label: t('alerts.col.when'), cell: (e) => h('span', { title: fmtDateTime(e.ts_ms) }, `${fmtDate(e.ts_ms, { month: 'short', day: 'numeric' })} ${fmtTime(e.ts_ms)}`) },
    { label: t('alerts.col.title'), cell: (e) => h('span', {}, h('span', { class: 'strong' }, e.title), h('small', { class: 'muted block mono' }, e.rule)) },
    {
      label: t('alerts.col.delivered'), cell: (e) => h('span', {},
        e.delivered.length ? h('span', { class: 'mono', dataset: { delivered: e.delivered.join(',') } }, e.delivered.join(', ')) : null,
        e.failed.map((f) => h('small', { class: 'block danger-text', dataset: { failed: '' } }, f)),
        !e.delivered.length && !e.failed.length ? h('span', { class: 'muted' }, t('alerts.noChannel')) : null),
    },
  ], entries, { cards: true, empty: t('alerts.historyEmpty'), rowData: (e) => ({ rule: e.rule, event: e.event }) });
}

// ---- Charts ---------------------------------------------------------------------------------

const minuteLabel = (secs) => fmtDate(secs * 1000, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });

/** A chart of per-minute lines, fed new data by `update` on each refresh. */
function minuteChart(box, spec) {
  return lineChart(box, {
    height: 180,
    x: { label: t('live.chartMinute'), format: minuteLabel },
    y: { format: spec.format },
    lines: spec.lines.map(([key, , color]) => ({ label: t(`live.line.${key}`), color, fill: true })),
    data: [[], ...spec.lines.map(() => [])],
  });
}
