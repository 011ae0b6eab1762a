// Call logs: filters, pages (the API's opaque cursor, with a stack of earlier cursors for
// "Newer"), and a row's details. A log holds no secret and no prompt or answer text: Maestro
// records neither, so the details show what the log event holds and nothing else.

import { api } from './api.js';
import { badge, clear, errorBox, h, pageHeader, spinner, table } from './dom.js';
import { fmtDateTime, fmtDuration, fmtMoney, fmtNumber, t } from './i18n.js';

// Filters and their query parameter names; empty ones are not sent. Labels and placeholders are
// message ids (read at render time, in the current language).
const FILTERS = [
  { name: 'from', label: 'logs.filter.from', type: 'date' },
  { name: 'to', label: 'logs.filter.to', type: 'date' },
  { name: 'provider', label: 'logs.filter.provider', type: 'text', list: 'logs-providers', placeholder: 'common.any' },
  { name: 'model', label: 'logs.filter.model', type: 'text', placeholder: 'logs.filter.modelPlaceholder' },
  { name: 'status', label: 'logs.filter.status', type: 'select', options: [['', 'common.any'], ['success', 'outcome.success'], ['error', 'outcome.error']] },
  { name: 'user', label: 'logs.filter.user', type: 'text', placeholder: 'logs.filter.userPlaceholder' },
  { name: 'route', label: 'logs.filter.route', type: 'text', placeholder: 'common.any' },
  { name: 'request_id', label: 'logs.filter.requestId', type: 'text', example: 'req_…' },
];

const outcome = (status) => (status === 'success' || status === 'error' ? t(`outcome.${status}`) : status);

// The fields of a log event (`logs.detail.<id>`), in the order the details show them.
const DETAILS = [
  ['requestId', (e) => e.request_id], ['time', (e) => fmtDateTime(e.ts_ms)], ['user', (e) => e.user_id ?? '—'],
  ['provider', (e) => e.provider], ['model', (e) => e.model], ['key', (e) => e.key_id ?? '—'], ['route', (e) => e.route ?? '—'],
  ['routeRule', (e) => e.route_rule ?? '—'],
  ['type', (e) => e.request_type], ['stream', (e) => t(e.stream ? 'common.yes' : 'common.no')],
  ['status', (e) => t('logs.detail.statusValue', { status: outcome(e.status), code: e.http_status })],
  ['errorCode', (e) => e.error_code ?? '—'], ['errorMessage', (e) => e.error_message ?? '—'],
  ['promptTokens', (e) => fmtNumber(e.prompt_tokens)], ['cachedTokens', (e) => fmtNumber(e.cached_tokens)],
  ['completionTokens', (e) => fmtNumber(e.completion_tokens)],
  ['cost', (e) => t('logs.detail.costValue', { money: fmtMoney(e.cost_micros), micros: t('fmt.micros', { value: fmtNumber(e.cost_micros) }) })],
  ['latency', (e) => fmtDuration(e.latency_ms)], ['ttfb', (e) => fmtDuration(e.ttfb_ms)], ['attempts', (e) => fmtNumber(e.attempts)],
];

export function render(main) {
  const inputs = {};
  const state = { cursors: [null], page: 0, limit: 25 };
  const providers = h('datalist', { id: 'logs-providers' });
  const form = h('form', { class: 'filters card', autocomplete: 'off', 'aria-label': t('logs.filters') },
    FILTERS.map((f) => {
      const id = `logs-${f.name}`;
      const placeholder = f.placeholder ? t(f.placeholder) : f.example;
      const input = f.type === 'select'
        ? h('select', { id, name: f.name }, f.options.map(([v, l]) => h('option', { value: v }, t(l))))
        : h('input', { id, name: f.name, type: f.type, list: f.list, placeholder, spellcheck: 'false' });
      inputs[f.name] = input;
      return h('div', { class: 'field' }, h('label', { for: id }, t(f.label)), input);
    }),
    h('div', { class: 'field' }, h('label', { for: 'logs-limit' }, t('logs.perPage')),
      (inputs.limit = h('select', { id: 'logs-limit' }, [5, 10, 25, 50, 100].map((n) => h('option', { value: n, selected: n === 25 }, String(n)))))),
    h('div', { class: 'filter-actions' },
      h('button', { type: 'submit', class: 'primary' }, t('logs.apply')),
      h('button', { type: 'button', class: 'ghost', dataset: { action: 'reset' }, onclick: () => { form.reset(); first(); } }, t('logs.reset'))),
    providers);
  const results = h('div', { class: 'stack' });
  main.append(pageHeader(t('logs.title'), t('logs.help')), form, results);

  form.addEventListener('submit', (e) => { e.preventDefault(); first(); });

  function first() {
    state.cursors = [null];
    state.page = 0;
    state.limit = Number(inputs.limit.value);
    load();
  }

  async function load() {
    clear(results, spinner(t('logs.loading')));
    const query = { limit: state.limit, cursor: state.cursors[state.page] };
    for (const f of FILTERS) query[f.name] = inputs[f.name].value.trim();
    let page;
    try {
      page = await api('/api/admin/ai-stats/logs', { query });
    } catch (e) {
      clear(results, errorBox(e, load));
      return;
    }
    state.cursors[state.page + 1] = page.next_cursor;
    const newer = h('button', { type: 'button', class: 'ghost', dataset: { action: 'newer' }, disabled: state.page === 0 }, t('logs.newer'));
    const older = h('button', { type: 'button', class: 'ghost', dataset: { action: 'older' }, disabled: !page.next_cursor }, t('logs.older'));
    newer.addEventListener('click', () => { state.page -= 1; load(); });
    older.addEventListener('click', () => { state.page += 1; load(); });
    clear(results,
      h('section', { class: 'card flush' }, table([
        { label: t('logs.col.time'), cell: (e) => h('span', { class: 'nowrap', dataset: { ts: String(e.ts_ms) } }, fmtDateTime(e.ts_ms)) },
        {
          label: t('logs.col.status'),
          cell: (e) => h('span', { title: outcome(e.status) }, badge(String(e.http_status), e.status === 'success' ? 'ok' : 'bad')),
        },
        { label: t('logs.col.model'), cell: (e) => h('span', { class: 'mono' }, `${e.provider}/${e.model}`) },
        { label: t('logs.col.user'), cell: (e) => e.user_id ?? '—' },
        { label: t('logs.col.tokens'), class: 'num', cell: (e) => `${fmtNumber(e.prompt_tokens)} / ${fmtNumber(e.completion_tokens)}` },
        { label: t('logs.col.cost'), class: 'num', cell: (e) => fmtMoney(e.cost_micros) },
        { label: t('logs.col.latency'), class: 'num', cell: (e) => fmtDuration(e.latency_ms) },
        { label: t('logs.col.tries'), class: 'num', cell: (e) => fmtNumber(e.attempts) },
      ], page.data, {
        empty: t('logs.empty'),
        onRowClick: details,
        rowLabel: (e) => t('logs.rowLabel', { id: e.request_id }),
        rowData: (e) => ({ request: e.request_id }),
      })),
      h('nav', { class: 'pager', 'aria-label': t('logs.pages') },
        newer, h('span', { class: 'muted small', dataset: { page: String(state.page + 1) } },
          t('logs.page', { page: fmtNumber(state.page + 1), count: fmtNumber(page.data.length) })), older));
  }

  // Suggestions for the provider filter; the field works without them, so a failure is silent.
  api('/api/admin/ai-providers').then((r) => clear(providers, r.data.map((p) => h('option', { value: p.provider_code }))))
    .catch(() => {});
  load();
  return null;
}

function details(event) {
  const close = () => { dialog.close(); dialog.remove(); };
  const dialog = h('dialog', { class: 'dialog', 'aria-label': t('logs.details'), dataset: { dialog: 'call-details' } },
    h('div', { class: 'form' },
      h('header', { class: 'dialog-head' }, h('h2', {}, t('logs.details')),
        h('button', { type: 'button', class: 'ghost icon', 'aria-label': t('common.close'), onclick: close }, '×')),
      h('dl', { class: 'details' }, DETAILS.map(([id, value]) => [
        h('dt', {}, t(`logs.detail.${id}`)), h('dd', { dataset: { field: id } }, value(event)),
      ])),
      h('p', { class: 'muted small' }, t('logs.detailsNote')),
      h('footer', { class: 'dialog-foot' }, h('button', { type: 'button', class: 'primary', onclick: close }, t('common.close')))));
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}
