// Spend: where the money goes, per user, per Maestro API key or per model, over 7, 30 or 90 days
// (from /ai-stats/spend): the total, the daily cost of the top groups as lines, and a top-N table
// with each group's calls, tokens, cost and share. The choice lives in the address
// (`#/spend?by=caller_key&days=30`), so Back and a shared link show the same view. Caller keys are
// named from /api-keys (their name, owner and masked key); a key since deleted shows its id.

import { api } from './api.js';
import { DAY_STEPS, WHOLE_STEPS, lineChart } from './charts.js';
import { clear, errorBox, h, pageHeader, spinner, table } from './dom.js';
import { fmtDate, fmtMoney, fmtNumber, fmtPercent, t } from './i18n.js';

export const BY = ['user', 'caller_key', 'model'];
export const DAYS = [7, 30, 90];
const TOP = 10;
// Lines drawn in the chart: the first groups of the table, then the rest as one.
const LINES = 5;
const COLORS = ['#4f46e5', '#0891b2', '#d97706', '#db2777', '#16a34a', '#94a3b8'];

function fromAddress() {
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const by = BY.includes(params.get('by')) ? params.get('by') : 'user';
  const days = DAYS.includes(Number(params.get('days'))) ? Number(params.get('days')) : 30;
  return { by, days };
}

function go(state) {
  location.hash = `#/spend?by=${state.by}&days=${state.days}`;
}

export function render(main) {
  const state = fromAddress();
  let chart = null;
  const segmented = (label, values, current, text, set) => h('div', { class: 'segmented', role: 'group', 'aria-label': label },
    values.map((value) => h('button', {
      type: 'button', 'aria-pressed': String(value === current), dataset: { value: String(value) },
      onclick: () => { if (value !== current) go({ ...state, ...set(value) }); },
    }, text(value))));
  const controls = h('div', { class: 'spend-controls', dataset: { section: 'spend-controls' } },
    segmented(t('spend.byLabel'), BY, state.by, (b) => t(`spend.by.${b}`), (by) => ({ by })),
    segmented(t('spend.rangeLabel'), DAYS, state.days, (d) => t('dashboard.days', { count: fmtNumber(d) }), (days) => ({ days })));
  const body = h('div', { class: 'stack' }, spinner(t('spend.loading')));
  main.append(pageHeader(t('spend.title'), t('spend.help')), controls, body);

  async function load() {
    const to = new Date();
    const from = new Date(to.getTime() - (state.days - 1) * 86_400_000);
    const day = (d) => d.toISOString().slice(0, 10);
    let report;
    let keys = null;
    try {
      [report, keys] = await Promise.all([
        api('/api/admin/ai-stats/spend', { query: { by: state.by, from: day(from), to: day(to), top: TOP } }),
        state.by === 'caller_key' ? api('/api/admin/api-keys').then((r) => r.data, () => null) : null,
      ]);
    } catch (e) {
      clear(body, errorBox(e, load));
      return;
    }
    const names = new Map((keys || []).map((k) => [k.id, k]));
    const label = (group) => {
      if (state.by !== 'caller_key') return h('span', { class: 'mono' }, group);
      const key = names.get(group);
      return key
        ? h('span', {}, h('span', { class: 'strong' }, key.key_name), h('small', { class: 'muted block mono' }, `${key.owner} · ${key.masked_key}`))
        : h('span', { class: 'mono' }, group, h('small', { class: 'muted block' }, t('spend.keyGone')));
    };
    const rows = report.others ? [...report.top, { ...report.others, others: true }] : report.top;
    const rank = new Map(report.top.map((g, i) => [g.group, i + 1]));
    const figures = h('section', { class: 'kpis', 'aria-label': t('spend.figures') },
      [
        ['cost', fmtMoney(report.total.cost_micros), t('spend.kpi.costNote', { from: fmtDate(report.from), to: fmtDate(report.to) })],
        ['requests', fmtNumber(report.total.requests), t('spend.kpi.requestsNote', { count: fmtNumber(report.total.errors) })],
        ['tokens', fmtNumber(report.total.total_tokens), t('dashboard.kpi.tokensNote', { input: fmtNumber(report.total.prompt_tokens), output: fmtNumber(report.total.completion_tokens) })],
        ['groups', fmtNumber(report.groups), t(`spend.kpi.groupsNote.${state.by}`)],
      ].map(([key, value, note]) => h('div', { class: 'card kpi', dataset: { kpi: key } },
        h('div', { class: 'kpi-label' }, t(`spend.kpi.${key}`)), h('div', { class: 'kpi-value' }, value), h('div', { class: 'kpi-note muted' }, note))));
    const chartCard = h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', {}, t('spend.dailyCost'))));
    const share = (g) => {
      const bar = h('span', { class: 'meter-bar' });
      bar.style.width = `${Math.round((g.cost_share ?? 0) * 100)}%`; // CSSOM: the CSP allows no style attribute
      return h('span', { class: 'meter-cell' }, h('span', { class: 'meter meter-accent' }, bar), fmtPercent(g.cost_share));
    };
    const list = h('section', { class: 'card flush', dataset: { section: 'spend-top' } },
      h('div', { class: 'card-head padded' }, h('h2', {}, t('spend.top', { count: fmtNumber(Math.min(TOP, report.groups)) }))),
      table([
        { label: '#', class: 'num', cell: (g) => (g.others ? '' : fmtNumber(rank.get(g.group))) },
        { label: t(`spend.col.${state.by}`), cell: (g) => (g.others ? h('span', { class: 'muted' }, t('spend.others', { count: fmtNumber(report.groups - report.top.length) })) : label(g.group)) },
        { label: t('spend.col.requests'), class: 'num', cell: (g) => fmtNumber(g.usage.requests) },
        { label: t('spend.col.errors'), class: 'num', cell: (g) => fmtNumber(g.usage.errors) },
        { label: t('spend.col.tokens'), class: 'num', cell: (g) => fmtNumber(g.usage.total_tokens) },
        { label: t('spend.col.cost'), class: 'num', cell: (g) => h('span', { dataset: { cost: String(g.usage.cost_micros) } }, fmtMoney(g.usage.cost_micros)) },
        { label: t('spend.col.share'), cell: share },
      ], rows, { cards: true, empty: t('spend.empty'), rowData: (g) => ({ group: g.others ? '' : g.group, others: String(Boolean(g.others)) }) }));
    clear(body, figures, chartCard, list);
    if (chart) chart.destroy();
    chart = report.total.requests ? dailyChart(chartCard, report, state.by === 'caller_key' ? (g) => names.get(g)?.key_name ?? g : (g) => g)
      : (chartCard.append(h('p', { class: 'empty' }, t('spend.empty'))), null);
  }

  load();
  return () => { if (chart) chart.destroy(); };
}

/** Daily cost of the first groups and of the rest, one line each. */
function dailyChart(card, report, name) {
  const lines = report.top.slice(0, LINES).map((g) => [name(g.group), g.daily_cost_micros]);
  const rest = report.top.slice(LINES);
  if (rest.length || report.others) {
    const sum = report.days.map((_, i) => rest.reduce((n, g) => n + g.daily_cost_micros[i], 0) + (report.others?.daily_cost_micros[i] ?? 0));
    lines.push([t('spend.rest'), sum]);
  }
  const box = h('figure', { class: 'chart', dataset: { chart: 'spend' } });
  card.append(box);
  return lineChart(box, {
    height: 240,
    x: { label: t('spend.chartDay'), format: (secs) => fmtDate(secs * 1000, { month: 'short', day: 'numeric' }), steps: DAY_STEPS },
    y: { format: fmtMoney, steps: WHOLE_STEPS },
    lines: lines.map(([label], i) => ({ label, color: COLORS[i % COLORS.length] })),
    data: [report.days.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000), ...lines.map(([, values]) => values)],
  });
}
