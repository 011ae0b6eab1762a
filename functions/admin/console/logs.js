// Call logs: filters, pages (the API's opaque cursor, with a stack of earlier cursors for
// "Newer"), the number of calls found, a jump to a moment, a lookup by request id, a CSV export
// of what the filters find, and a row's details. A log holds no secret and no prompt or answer
// text: Maestro records neither, so the details show what the log event holds and nothing else,
// the call's attempts as a timeline in order (where each went, with which key, what the provider
// answered and how fast, and the keys passed over with why).
//
// The filters live in the address (`#/logs?model_contains=gpt&status=error&range=24h`): Apply
// adds a history entry, so Back returns to the filters before, and a copied link opens the same
// view. `request=<id>` in the address opens that call's details.

import { api, download } from './api.js';
import { badge, clear, errorBox, h, pageHeader, spinner, table, toast } from './dom.js';
import { fmtDateTime, fmtDuration, fmtMoney, fmtNumber, t } from './i18n.js';

// The time presets: how far back from now (ms); `custom` shows the day fields.
const RANGES = [['', null], ['15m', 15 * 60e3], ['1h', 3600e3], ['24h', 86400e3], ['7d', 7 * 86400e3], ['30d', 30 * 86400e3], ['custom', null]];
const LIMITS = [5, 10, 25, 50, 100, 500, 1000];

// Filters and their query parameter names (in the address and to the API); empty ones are not
// sent. Labels and placeholders are message ids (read at render time, in the current language).
const FILTERS = [
  { name: 'range', label: 'logs.filter.range', type: 'select', options: RANGES.map(([v]) => [v, v ? `logs.range.${v}` : 'logs.range.all']) },
  { name: 'from', label: 'logs.filter.from', type: 'date', custom: true },
  { name: 'to', label: 'logs.filter.to', type: 'date', custom: true },
  { name: 'provider', label: 'logs.filter.provider', type: 'text', list: 'logs-providers', placeholder: 'common.any' },
  { name: 'model_contains', label: 'logs.filter.model', type: 'text', placeholder: 'logs.filter.modelPlaceholder' },
  { name: 'status', label: 'logs.filter.status', type: 'select', options: [['', 'common.any'], ['success', 'outcome.success'], ['error', 'outcome.error']] },
  { name: 'user_contains', label: 'logs.filter.user', type: 'text', placeholder: 'logs.filter.userPlaceholder' },
  { name: 'route', label: 'logs.filter.route', type: 'text', placeholder: 'common.any' },
];
// Besides the filters, the address may hold the page size (`limit`), a jump (`before`, unix ms)
// and a call whose details to open (`request`).

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

/** The view's state in the address: `#/logs?…` → its parameters. */
function fromAddress() {
  const query = location.hash.split('?')[1] || '';
  return new URLSearchParams(query);
}

/** `YYYY-MM-DDTHH:MM` (a datetime-local field, read as UTC) ↔ unix ms. */
const toLocalField = (ms) => new Date(ms).toISOString().slice(0, 16);
const fromLocalField = (text) => (text ? Date.parse(`${text}:00Z`) : NaN);

export function render(main) {
  const params = fromAddress();
  const inputs = {};
  const state = { cursors: [null], page: 0, limit: LIMITS.includes(Number(params.get('limit'))) ? Number(params.get('limit')) : 25 };
  const before = Number(params.get('before')) || null;
  const providers = h('datalist', { id: 'logs-providers' });
  // Each key's masked secret by key id, as the providers view shows it (for the attempts).
  const masked = new Map();
  const customFields = [];
  const form = h('form', { class: 'filters card', autocomplete: 'off', 'aria-label': t('logs.filters') },
    FILTERS.map((f) => {
      const id = `logs-${f.name}`;
      const placeholder = f.placeholder ? t(f.placeholder) : null;
      const input = f.type === 'select'
        ? h('select', { id, name: f.name }, f.options.map(([v, l]) => h('option', { value: v }, t(l))))
        : h('input', { id, name: f.name, type: f.type, list: f.list, placeholder, spellcheck: 'false' });
      input.value = params.get(f.name) ?? '';
      inputs[f.name] = input;
      const field = h('div', { class: 'field' }, h('label', { for: id }, t(f.label)), input);
      if (f.custom) customFields.push(field);
      return field;
    }),
    h('div', { class: 'field' }, h('label', { for: 'logs-limit' }, t('logs.perPage')),
      (inputs.limit = h('select', { id: 'logs-limit' }, LIMITS.map((n) => h('option', { value: n, selected: n === state.limit }, fmtNumber(n)))))),
    h('div', { class: 'filter-actions' },
      h('button', { type: 'submit', class: 'primary' }, t('logs.apply')),
      h('button', { type: 'button', class: 'ghost', dataset: { action: 'reset' }, onclick: () => go(new URLSearchParams()) }, t('logs.reset'))),
    providers);
  // A preset range hides the day fields; "custom" shows them.
  const showCustom = () => { for (const f of customFields) f.hidden = inputs.range.value !== 'custom'; };
  if (!inputs.range.value && (inputs.from.value || inputs.to.value)) inputs.range.value = 'custom';
  inputs.range.addEventListener('change', showCustom);
  showCustom();

  // A call by its request id, whatever the filters.
  const lookup = h('input', { id: 'logs-request', type: 'search', placeholder: 'req_…', spellcheck: 'false', 'aria-label': t('logs.lookup.label') });
  const lookupForm = h('form', { class: 'lookup', role: 'search', 'aria-label': t('logs.lookup.label') },
    h('label', { for: 'logs-request' }, t('logs.lookup.label')), lookup,
    h('button', { type: 'submit', class: 'ghost' }, t('logs.lookup.find')));
  lookupForm.addEventListener('submit', (e) => {
    e.preventDefault();
    if (lookup.value.trim()) open(lookup.value.trim());
  });

  const jump = h('input', { id: 'logs-jump', type: 'datetime-local', step: 60, value: before ? toLocalField(before) : '' });
  const jumpForm = h('form', { class: 'lookup' },
    h('label', { for: 'logs-jump' }, t('logs.jump.label')), jump,
    h('button', { type: 'submit', class: 'ghost', dataset: { action: 'jump' } }, t('logs.jump.go')));
  jumpForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const at = fromLocalField(jump.value);
    const next = filterParams();
    if (!Number.isNaN(at)) next.set('before', String(at));
    go(next);
  });

  const exportButton = h('button', { type: 'button', class: 'ghost', dataset: { action: 'export' } }, t('logs.export'));
  exportButton.addEventListener('click', () => exportCsv());
  const summary = h('p', { class: 'muted small summary', role: 'status', dataset: { summary: '' } });
  const results = h('div', { class: 'stack' });
  main.append(pageHeader(t('logs.title'), t('logs.help'), exportButton), form,
    h('div', { class: 'lookups' }, lookupForm, jumpForm), summary, results);

  form.addEventListener('submit', (e) => { e.preventDefault(); go(filterParams()); });

  /** The filters as typed, as address parameters. */
  function filterParams() {
    const next = new URLSearchParams();
    for (const f of FILTERS) {
      if (f.custom && inputs.range.value !== 'custom') continue;
      const value = inputs[f.name].value.trim();
      if (value && !(f.name === 'range' && value === 'custom' && !inputs.from.value && !inputs.to.value)) next.set(f.name, value);
    }
    if (Number(inputs.limit.value) !== 25) next.set('limit', inputs.limit.value);
    return next;
  }

  /** A new address: a history entry, and the view drawn again from it (app.js on hashchange). */
  function go(next) {
    const hash = `#/logs${next.toString() ? `?${next}` : ''}`;
    if (hash !== location.hash) {
      location.hash = hash;
      return;
    }
    state.cursors = [null];
    state.page = 0;
    load();
  }

  /** The API's filters for what the address says (a preset becomes `from_ms` from now). */
  function apiFilters() {
    const query = {};
    for (const f of FILTERS) {
      if (f.name === 'range') continue;
      if (f.custom && params.get('range') !== 'custom' && params.get('range')) continue;
      query[f.name] = (params.get(f.name) || '').trim();
    }
    const span = RANGES.find(([v]) => v === params.get('range'))?.[1];
    if (span) query.from_ms = Date.now() - span;
    if (before) query.to_ms = before;
    return query;
  }
  const filtered = () => Object.values(apiFilters()).some((v) => v !== '' && v !== undefined);

  async function load() {
    clear(results, spinner(t('logs.loading')));
    const query = { ...apiFilters(), limit: state.limit, cursor: state.cursors[state.page] };
    let page;
    try {
      page = await api('/api/admin/ai-stats/logs', { query });
    } catch (e) {
      clear(results, errorBox(e, load));
      return;
    }
    state.cursors[state.page + 1] = page.next_cursor;
    if (state.page === 0) count();
    const first = state.page * state.limit;
    const newer = h('button', { type: 'button', class: 'ghost', dataset: { action: 'newer' }, disabled: state.page === 0 }, t('logs.newer'));
    const older = h('button', { type: 'button', class: 'ghost', dataset: { action: 'older' }, disabled: !page.next_cursor }, t('logs.older'));
    const newest = h('button', { type: 'button', class: 'ghost', dataset: { action: 'newest' }, disabled: state.page === 0 }, t('logs.newest'));
    newer.addEventListener('click', () => { state.page -= 1; load(); });
    older.addEventListener('click', () => { state.page += 1; load(); });
    newest.addEventListener('click', () => { state.page = 0; load(); });
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
        cards: true,
        empty: filtered() ? t('logs.empty') : t('logs.emptyAll'),
        onRowClick: (e) => details(e, masked),
        rowLabel: (e) => t('logs.rowLabel', { id: e.request_id }),
        rowData: (e) => ({ request: e.request_id }),
      })),
      h('nav', { class: 'pager', 'aria-label': t('logs.pages') },
        h('span', { class: 'pager-buttons' }, newest, newer),
        h('span', { class: 'muted small', dataset: { page: String(state.page + 1) } },
          page.data.length
            ? t('logs.pageRange', { page: fmtNumber(state.page + 1), first: fmtNumber(first + 1), last: fmtNumber(first + page.data.length) })
            : t('logs.page', { page: fmtNumber(state.page + 1), count: fmtNumber(0) })),
        older));
  }

  /** How many calls the filters find (at most 10,000 are counted). */
  async function count() {
    summary.textContent = '';
    try {
      const found = await api('/api/admin/ai-stats/logs/count', { query: apiFilters() });
      summary.dataset.count = String(found.count);
      summary.textContent = found.capped
        ? t('logs.countCapped', { count: fmtNumber(found.cap) })
        : t(found.count === 1 ? 'logs.countOne' : 'logs.count', { count: fmtNumber(found.count) });
    } catch (e) {
      summary.textContent = e.message;
    }
  }

  /** The calls the filters find as a CSV file (the newest 100,000 at most), saved by the browser. */
  async function exportCsv() {
    exportButton.disabled = true;
    try {
      const { blob, name } = await download('/api/admin/ai-stats/logs/export', { query: apiFilters() });
      const link = h('a', { href: URL.createObjectURL(blob), download: name, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 60e3);
      toast(t('logs.exported', { name }));
    } catch (e) {
      toast(e.message, 'error');
    } finally {
      exportButton.disabled = false;
    }
  }

  /** The details of one call by its request id; said so when there is none. */
  async function open(id) {
    try {
      const found = (await api('/api/admin/ai-stats/logs', { query: { request_id: id, limit: 1 } })).data[0];
      if (found) details(found, masked);
      else toast(t('logs.lookup.none', { id }), 'warn');
    } catch (e) {
      toast(e.message, 'error');
    }
  }

  // Suggestions for the provider filter, and the keys' masked secrets; the view works without
  // them, so a failure is silent.
  const catalog = api('/api/admin/ai-providers').then((r) => {
    clear(providers, r.data.map((p) => h('option', { value: p.provider_code })));
    for (const p of r.data) for (const k of p.keys) masked.set(k.id, k.masked_key);
  }).catch(() => {});
  load();
  if (params.get('request')) catalog.then(() => open(params.get('request')));
  return null;
}

// What an attempt came to when the provider gave no HTTP status (`logs.attempt.outcome.<id>`);
// any other outcome is shown as the API names it.
const OUTCOMES_WITHOUT_STATUS = ['upstream_timeout', 'upstream_unreachable', 'upstream_malformed_response', 'no_key', 'secret_unreadable'];
// Why key selection passed a key over (`logs.skip.<reason>`).
const SKIP_REASONS = ['invalid', 'cooling_down', 'resting', 'rpm_limit', 'tpm_limit', 'rpd_limit', 'counters_unavailable'];

/** A key as the other views show it: its id, and its masked secret while the key exists. */
function keyLabel(id, masked) {
  const secret = masked.get(id);
  return h('span', { class: 'mono', dataset: { key: id } }, secret ? t('logs.attempt.keyMasked', { id, masked: secret }) : id);
}

/** The call's attempts in order: a timeline of where each went and what came of it. */
function attempts(event, masked) {
  const entries = event.attempt_log || [];
  if (!entries.length) return null;
  return h('section', { class: 'attempts', dataset: { attempts: String(entries.length) } },
    h('h3', {}, t('logs.attempts.title', { count: fmtNumber(entries.length) })),
    h('ol', { class: 'timeline' }, entries.map((a, i) => {
      const ok = a.outcome === 'ok';
      const status = a.http_status != null
        ? badge(t('logs.attempt.http', { status: a.http_status }), ok ? 'ok' : 'bad')
        : badge(OUTCOMES_WITHOUT_STATUS.includes(a.outcome) ? t(`logs.attempt.outcome.${a.outcome}`) : a.outcome, a.outcome === 'no_key' ? 'warn' : 'bad');
      return h('li', { class: ['attempt', ok ? 'attempt-ok' : 'attempt-failed'], dataset: { attempt: String(i + 1), outcome: a.outcome } },
        h('div', { class: 'attempt-head' },
          h('span', { class: 'attempt-no' }, `#${i + 1}`),
          h('span', { class: 'mono' }, `${a.provider}/${a.model}`),
          a.key_id ? keyLabel(a.key_id, masked) : h('span', { class: 'muted' }, t('logs.attempt.noKey')),
          status,
          // A failure with a status also names its kind, as the API does.
          !ok && a.http_status != null ? h('span', { class: 'mono muted' }, a.outcome) : null,
          a.key_id ? h('span', { class: 'muted nowrap', dataset: { latency: String(a.latency_ms) } }, fmtDuration(a.latency_ms)) : null),
        a.message ? h('div', { class: 'attempt-message mono', dataset: { message: '' } }, a.message) : null,
        a.skipped?.length
          ? h('ul', { class: 'attempt-skips' }, a.skipped.map((s) => h('li', { dataset: { skipped: s.key_id, reason: s.reason } },
            t('logs.attempt.skipped', { reason: SKIP_REASONS.includes(s.reason) ? t(`logs.skip.${s.reason}`) : s.reason }),
            ' ', keyLabel(s.key_id, masked))))
          : null);
    })));
}

function details(event, masked = new Map()) {
  const close = () => { dialog.close(); dialog.remove(); };
  const dialog = h('dialog', { class: 'dialog', 'aria-label': t('logs.details'), dataset: { dialog: 'call-details' } },
    h('div', { class: 'form' },
      h('header', { class: 'dialog-head' }, h('h2', {}, t('logs.details')),
        h('button', { type: 'button', class: 'ghost icon', 'aria-label': t('common.close'), onclick: close }, '×')),
      h('dl', { class: 'details' }, DETAILS.map(([id, value]) => [
        h('dt', {}, t(`logs.detail.${id}`)), h('dd', { dataset: { field: id } }, value(event)),
      ])),
      attempts(event, masked),
      h('p', { class: 'muted small' }, t('logs.detailsNote')),
      h('footer', { class: 'dialog-foot' }, h('button', { type: 'button', class: 'primary', onclick: close }, t('common.close')))));
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}
