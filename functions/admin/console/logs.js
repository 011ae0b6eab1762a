// Call logs: filters, pages (the API's opaque cursor, with a stack of earlier cursors for
// "Newer"), and a row's details. A log holds no secret and no prompt or answer text: Maestro
// records neither, so the details show what the log event holds and nothing else.

import { api } from './api.js';
import { badge, clear, errorBox, h, int, money, ms, pageHeader, spinner, table, utc } from './dom.js';

// Filters and their query parameter names; empty ones are not sent.
const FILTERS = [
  { name: 'from', label: 'From', type: 'date' },
  { name: 'to', label: 'To', type: 'date' },
  { name: 'provider', label: 'Provider', type: 'text', list: 'logs-providers', placeholder: 'any' },
  { name: 'model', label: 'Model', type: 'text', placeholder: 'e.g. gpt-4o' },
  { name: 'status', label: 'Status', type: 'select', options: [['', 'any'], ['success', 'success'], ['error', 'error']] },
  { name: 'user', label: 'User', type: 'text', placeholder: 'user id' },
  { name: 'request_id', label: 'Request id', type: 'text', placeholder: 'req_…' },
];

// The fields of a log event, in the order the details show them.
const DETAILS = [
  ['Request id', (e) => e.request_id], ['Time (UTC)', (e) => utc(e.ts_ms)], ['User', (e) => e.user_id ?? '—'],
  ['Provider', (e) => e.provider], ['Model', (e) => e.model], ['Key', (e) => e.key_id ?? '—'], ['Route', (e) => e.route ?? '—'],
  ['Type', (e) => e.request_type], ['Stream', (e) => (e.stream ? 'yes' : 'no')], ['Status', (e) => `${e.status} (HTTP ${e.http_status})`],
  ['Error code', (e) => e.error_code ?? '—'], ['Error message', (e) => e.error_message ?? '—'],
  ['Prompt tokens', (e) => int(e.prompt_tokens)], ['Cached tokens', (e) => int(e.cached_tokens)],
  ['Completion tokens', (e) => int(e.completion_tokens)], ['Cost', (e) => `${money(e.cost_micros)} (${int(e.cost_micros)} micro-USD)`],
  ['Latency', (e) => ms(e.latency_ms)], ['Time to first byte', (e) => ms(e.ttfb_ms)], ['Attempts', (e) => String(e.attempts)],
];

export function render(main) {
  const inputs = {};
  const state = { cursors: [null], page: 0, limit: 25 };
  const providers = h('datalist', { id: 'logs-providers' });
  const form = h('form', { class: 'filters card', autocomplete: 'off', 'aria-label': 'Filters' },
    FILTERS.map((f) => {
      const id = `logs-${f.name}`;
      const input = f.type === 'select'
        ? h('select', { id, name: f.name }, f.options.map(([v, l]) => h('option', { value: v }, l)))
        : h('input', { id, name: f.name, type: f.type, list: f.list, placeholder: f.placeholder, spellcheck: 'false' });
      inputs[f.name] = input;
      return h('div', { class: 'field' }, h('label', { for: id }, f.label), input);
    }),
    h('div', { class: 'field' }, h('label', { for: 'logs-limit' }, 'Per page'),
      (inputs.limit = h('select', { id: 'logs-limit' }, [5, 10, 25, 50, 100].map((n) => h('option', { value: n, selected: n === 25 }, String(n)))))),
    h('div', { class: 'filter-actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Apply'),
      h('button', { type: 'button', class: 'ghost', onclick: () => { form.reset(); first(); } }, 'Reset')),
    providers);
  const results = h('div', { class: 'stack' });
  main.append(pageHeader('Logs', 'Every call, newest first. No prompt or answer text is recorded.'), form, results);

  form.addEventListener('submit', (e) => { e.preventDefault(); first(); });

  function first() {
    state.cursors = [null];
    state.page = 0;
    state.limit = Number(inputs.limit.value);
    load();
  }

  async function load() {
    clear(results, spinner('Loading logs…'));
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
    const newer = h('button', { type: 'button', class: 'ghost', disabled: state.page === 0 }, '← Newer');
    const older = h('button', { type: 'button', class: 'ghost', disabled: !page.next_cursor }, 'Older →');
    newer.addEventListener('click', () => { state.page -= 1; load(); });
    older.addEventListener('click', () => { state.page += 1; load(); });
    clear(results,
      h('section', { class: 'card flush' }, table([
        { label: 'Time (UTC)', cell: (e) => h('span', { class: 'nowrap' }, utc(e.ts_ms)) },
        { label: 'Status', cell: (e) => badge(String(e.http_status), e.status === 'success' ? 'ok' : 'bad') },
        { label: 'Model', cell: (e) => h('span', { class: 'mono' }, `${e.provider}/${e.model}`) },
        { label: 'User', cell: (e) => e.user_id ?? '—' },
        { label: 'Tokens in / out', class: 'num', cell: (e) => `${int(e.prompt_tokens)} / ${int(e.completion_tokens)}` },
        { label: 'Cost', class: 'num', cell: (e) => money(e.cost_micros) },
        { label: 'Latency', class: 'num', cell: (e) => ms(e.latency_ms) },
        { label: 'Tries', class: 'num', cell: (e) => String(e.attempts) },
      ], page.data, {
        empty: 'No call matches these filters.',
        onRowClick: details,
        rowLabel: (e) => `Details of ${e.request_id}`,
        rowData: (e) => ({ request: e.request_id }),
      })),
      h('nav', { class: 'pager', 'aria-label': 'Pages' },
        newer, h('span', { class: 'muted small', dataset: { page: String(state.page + 1) } },
          `Page ${state.page + 1} · ${page.data.length} calls`), older));
  }

  // Suggestions for the provider filter; the field works without them, so a failure is silent.
  api('/api/admin/ai-providers').then((r) => clear(providers, r.data.map((p) => h('option', { value: p.provider_code }))))
    .catch(() => {});
  load();
  return null;
}

function details(event) {
  const close = () => { dialog.close(); dialog.remove(); };
  const dialog = h('dialog', { class: 'dialog', 'aria-label': 'Call details' },
    h('div', { class: 'form' },
      h('header', { class: 'dialog-head' }, h('h2', {}, 'Call details'),
        h('button', { type: 'button', class: 'ghost icon', 'aria-label': 'Close', onclick: close }, '×')),
      h('dl', { class: 'details' }, DETAILS.map(([label, value]) => [h('dt', {}, label), h('dd', {}, value(event))])),
      h('p', { class: 'muted small' }, 'Maestro keeps no prompt or answer text and no key secret in its logs.'),
      h('footer', { class: 'dialog-foot' }, h('button', { type: 'button', class: 'primary', onclick: close }, 'Close'))));
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}
