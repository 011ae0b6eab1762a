// Dashboard: today's, the last 7 and 30 days' figures (from /ai-stats/dashboard), daily requests
// and cost per provider (from /ai-stats/usage/trend, drawn with uPlot), the top models, and the
// keys that need a look: near a limit, or not `normal`.

import { api } from './api.js';
import {
  clear, errorBox, h, int, money, ms, pageHeader, percent, relative, spinner, statusBadge, activeBadge, table, utc,
} from './dom.js';

const PERIODS = [['today', 'Today'], ['last_7_days', '7 days'], ['last_30_days', '30 days']];
const COLORS = ['#4f46e5', '#0891b2', '#d97706', '#db2777', '#16a34a', '#7c3aed', '#dc2626', '#475569'];

// One card per figure: today large, the 7- and 30-day figures under it.
const KPIS = [
  { key: 'requests', label: 'Requests', value: (u) => int(u.requests), note: (u) => `${int(u.errors)} failed` },
  { key: 'success_rate', label: 'Success rate', value: (u) => percent(u.success_rate), note: (u) => `${int(u.successes)} succeeded` },
  { key: 'tokens', label: 'Tokens', value: (u) => int(u.total_tokens), note: (u) => `${int(u.prompt_tokens)} in · ${int(u.completion_tokens)} out` },
  { key: 'cost', label: 'Cost', value: (u) => money(u.cost_micros), note: (u) => `${int(u.cost_micros)} micro-USD` },
  { key: 'p50', label: 'Latency p50', value: (u) => ms(u.latency_ms_p50, true), note: (u) => `avg ${ms(u.latency_ms_avg)}` },
  { key: 'p95', label: 'Latency p95', value: (u) => ms(u.latency_ms_p95, true), note: () => 'histogram bucket bound' },
];

export function render(main) {
  const charts = [];
  let trendDays = 7;
  let data = null;
  const body = h('div', { class: 'stack' }, spinner());
  const stamp = h('span', { class: 'muted small' });
  main.append(pageHeader('Dashboard', 'Usage, cost and latency; days are UTC days.', stamp,
    h('button', { type: 'button', class: 'ghost', onclick: () => load() }, 'Refresh')), body);

  function destroyCharts() {
    while (charts.length) charts.pop().destroy();
  }

  async function load() {
    destroyCharts();
    clear(body, spinner('Loading the dashboard…'));
    try {
      data = await api('/api/admin/ai-stats/dashboard');
    } catch (e) {
      clear(body, errorBox(e, load));
      return;
    }
    stamp.textContent = `Updated ${utc(data.generated_at)} UTC`;
    const trend = h('section', { class: 'card' });
    clear(body, kpis(data), trend,
      h('div', { class: 'grid-2' }, topModels(data.top_models), keyHealth(data)));
    loadTrend(trend);
  }

  async function loadTrend(card) {
    destroyCharts();
    const period = trendDays === 7 ? data.last_7_days : data.last_30_days;
    const switcher = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Trend range' },
      [7, 30].map((days) => h('button', {
        type: 'button', 'aria-pressed': String(days === trendDays),
        onclick: () => { trendDays = days; loadTrend(card); },
      }, `${days} days`)));
    const content = h('div', { class: 'charts' }, spinner('Loading the trend…'));
    clear(card, h('div', { class: 'card-head' }, h('h2', {}, 'Daily requests and cost by provider'), switcher), content);
    let trend;
    try {
      trend = await api('/api/admin/ai-stats/usage/trend', { query: { from: period.from, to: period.to, group_by: 'provider' } });
    } catch (e) {
      clear(content, errorBox(e, () => loadTrend(card)));
      return;
    }
    if (!trend.series.length) {
      clear(content, h('p', { class: 'empty' }, 'No calls in this period yet.'));
      return;
    }
    const requestsBox = h('figure', { class: 'chart', 'data-chart': 'requests' }, h('figcaption', {}, 'Requests per day'));
    const costBox = h('figure', { class: 'chart', 'data-chart': 'cost' }, h('figcaption', {}, 'Cost per day'));
    clear(content, requestsBox, costBox);
    charts.push(chart(requestsBox, trend, (u) => u.requests, int));
    charts.push(chart(costBox, trend, (u) => u.cost_micros, money));
  }

  load();
  return destroyCharts;
}

function kpis(data) {
  return h('section', { class: 'kpis', 'aria-label': 'Figures' }, KPIS.map((k) => {
    const today = data.today.usage;
    return h('div', { class: 'card kpi', dataset: { kpi: k.key } },
      h('div', { class: 'kpi-label' }, k.label),
      h('div', { class: 'kpi-value', dataset: { period: 'today' }, title: 'Today (UTC)' }, k.value(today)),
      h('div', { class: 'kpi-note muted' }, `today · ${k.note(today)}`),
      h('dl', { class: 'kpi-periods' }, PERIODS.slice(1).map(([key, label]) => [
        h('dt', {}, label),
        h('dd', { dataset: { period: key }, title: `${data[key].from} – ${data[key].to}` }, k.value(data[key].usage)),
      ])));
  }));
}

function topModels(models) {
  return h('section', { class: 'card', 'data-section': 'top-models' },
    h('div', { class: 'card-head' }, h('h2', {}, 'Top models'), h('span', { class: 'muted small' }, 'last 7 days')),
    table([
      { label: 'Model', cell: (m) => h('span', { class: 'mono' }, `${m.provider_code}/${m.model_code}`) },
      { label: 'Requests', class: 'num', cell: (m) => int(m.requests) },
      { label: 'Failed', class: 'num', cell: (m) => int(m.errors) },
      { label: 'Tokens', class: 'num', cell: (m) => int(m.total_tokens) },
      { label: 'Cost', class: 'num', cell: (m) => money(m.cost_micros) },
    ], models, { empty: 'No calls in the last 7 days.' }));
}

function cooldown(key) {
  if (key.cooldown_until === null || key.cooldown_until === undefined) {
    return key.status === 'invalid' ? 'until validated' : '—';
  }
  if (key.cooldown_until <= Date.now()) return `ended ${relative(key.cooldown_until)}`;
  return `until ${utc(key.cooldown_until).slice(11)} UTC (${relative(key.cooldown_until)})`;
}

function keyHealth(data) {
  const meter = (percentUsed) => {
    const bar = h('span', { class: 'meter-bar' });
    bar.style.width = `${Math.min(percentUsed, 100)}%`; // CSSOM, allowed by the CSP (no style attribute)
    return h('span', { class: ['meter', percentUsed >= 100 && 'meter-full'] }, bar);
  };
  return h('section', { class: 'card', 'data-section': 'key-health' },
    h('div', { class: 'card-head' }, h('h2', {}, 'Keys near their limits')),
    table([
      { label: 'Key', cell: (k) => h('span', {}, k.key_name, h('small', { class: 'muted block' }, k.provider_code)) },
      { label: 'Limit', cell: (k) => k.limit },
      { label: 'Used', class: 'num', cell: (k) => `${int(k.used)} / ${int(k.limit_value)}` },
      { label: '', cell: (k) => h('span', { class: 'meter-cell' }, meter(k.percent), `${k.percent}%`) },
    ], data.keys_near_limits, { empty: 'No key is at 80 % of a limit.' }),
    h('div', { class: 'card-head' }, h('h2', {}, 'Keys not normal')),
    table([
      { label: 'Key', cell: (k) => h('span', {}, k.key_name, h('small', { class: 'muted block' }, k.provider_code)) },
      { label: 'Status', cell: (k) => statusBadge(k.status) },
      { label: 'Active', cell: (k) => activeBadge(k.is_active) },
      { label: 'Cool-down', cell: (k) => cooldown(k) },
    ], data.keys_not_normal, { empty: 'Every key is normal.' }));
}

// ---- uPlot ----------------------------------------------------------------------------------

const WHOLE_STEPS = Array.from({ length: 13 }, (_, e) => [1, 2, 5].map((m) => m * 10 ** e)).flat();

const dayLabel = (secs) => {
  const d = new Date(secs * 1000);
  return d.toLocaleDateString('en-US', { month: 'short', day: 'numeric', timeZone: 'UTC' });
};

/** A line per provider of one figure of the trend, sized to its box and following its width. */
function chart(box, trend, pick, format) {
  const days = trend.series[0].points.map((p) => Date.parse(`${p.date}T00:00:00Z`) / 1000);
  const values = trend.series.map((s) => s.points.map((p) => pick(p.usage)));
  const axis = { stroke: '#64748b', grid: { stroke: '#eef0f4', width: 1 }, ticks: { stroke: '#e2e8f0', width: 1 } };
  const measure = (u, labels) => {
    u.ctx.font = '12px system-ui, sans-serif';
    return Math.ceil(Math.max(0, ...(labels || []).map((l) => u.ctx.measureText(l).width))) + 18;
  };
  const plotBox = h('div', { class: 'chart-plot' });
  box.append(plotBox);
  const width = () => Math.max(plotBox.clientWidth, 200);
  const plot = new window.uPlot({
    width: width(),
    height: 220,
    cursor: { points: { size: 7 }, drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.15 : 1] } },
    axes: [
      { ...axis, space: 56, incrs: [86400, 2 * 86400, 7 * 86400, 14 * 86400], values: (u, splits) => splits.map(dayLabel) },
      // Both figures are whole numbers (requests, micro-USD): whole-number steps only.
      { ...axis, incrs: WHOLE_STEPS, values: (u, splits) => splits.map(format), size: (u, labels) => measure(u, labels) },
    ],
    series: [
      { label: 'Day', value: (u, v) => (v === null ? '—' : dayLabel(v)) },
      ...trend.series.map((s, i) => ({
        label: s.provider || 'all',
        stroke: COLORS[i % COLORS.length],
        fill: `${COLORS[i % COLORS.length]}14`,
        width: 2,
        points: { size: 6 },
        value: (u, v) => (v === null ? '—' : format(v)),
      })),
    ],
  }, [days, ...values], plotBox);
  let drawn = width();
  const resize = new ResizeObserver(() => {
    // Only on a real width change, so resizing the plot never feeds back into the observer.
    if (width() !== drawn) plot.setSize({ width: (drawn = width()), height: 220 });
  });
  resize.observe(plotBox);
  return { destroy: () => { resize.disconnect(); plot.destroy(); } };
}
