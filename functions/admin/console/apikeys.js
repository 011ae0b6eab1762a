// Maestro API keys (`mk-…`), the keys callers send instead of a JWT: list (masked), create, revoke.
// The full key exists in one answer only, the creation's: it is shown once, in a dialog of its
// own with a copy button, and leaves the page with that dialog. The list shows `masked_key` only.
// The API has no update: a key's owner, models and limits are fixed at creation (revoke it and
// create another to change them).

import { api } from './api.js';
import {
  badge, clear, confirmDialog, errorBox, formDialog, h, modal, notice, pageHeader, parseDecimal, spinner, table, toast,
} from './dom.js';
import { fmtDateTime, fmtList, fmtMoney, fmtNumber, t } from './i18n.js';

/** Whole numbers ≥ 1 typed into a limit field; null when left empty. */
function wholeNumber(raw, label) {
  if (raw === null) return null;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(t('apiKeys.error.whole', { field: label }));
  return n;
}

const when = (rfc3339) => (rfc3339 ? fmtDateTime(Date.parse(rfc3339)) : '—');

export function render(main) {
  const filters = { state: 'active', text: '' };
  let keys = [];
  const body = h('div', { class: 'stack' }, spinner(t('apiKeys.loading')));
  const stateSelect = h('select', { id: 'apikeys-state', 'aria-label': t('apiKeys.filterState') },
    h('option', { value: 'active', selected: true }, t('apiKeys.onlyActive')),
    h('option', { value: 'revoked' }, t('apiKeys.onlyRevoked')),
    h('option', { value: '' }, t('apiKeys.activeAndRevoked')));
  const search = h('input', { type: 'search', id: 'apikeys-search', placeholder: t('apiKeys.search'), 'aria-label': t('apiKeys.search') });
  stateSelect.addEventListener('change', () => { filters.state = stateSelect.value; show(); });
  search.addEventListener('input', () => { filters.text = search.value.trim().toLowerCase(); show(); });
  main.append(pageHeader(t('apiKeys.title'), t('apiKeys.help'),
    h('button', { type: 'button', class: 'primary', dataset: { action: 'create-key' }, onclick: create }, t('apiKeys.create'))),
  h('div', { class: 'toolbar' }, stateSelect, search), body);

  async function load() {
    try {
      keys = (await api('/api/admin/api-keys')).data;
    } catch (e) {
      clear(body, errorBox(e, load));
      return;
    }
    show();
  }

  const limits = (k) => [
    k.rate_limit_rpm === null ? null : t('limit.rpm', { value: fmtNumber(k.rate_limit_rpm) }),
    k.daily_token_budget === null ? null : t('apiKeys.limit.tokens', { value: fmtNumber(k.daily_token_budget) }),
    k.daily_cost_budget_micros === null ? null : t('apiKeys.limit.cost', { value: fmtMoney(k.daily_cost_budget_micros) }),
  ].filter(Boolean);

  function show() {
    const shown = keys.filter((k) => (!filters.state || k.is_active === (filters.state === 'active'))
      && (!filters.text || [k.key_name, k.owner, k.id, k.masked_key, ...k.allowed_models].join(' ').toLowerCase().includes(filters.text)));
    clear(body, h('section', { class: 'card flush' }, table([
      { label: t('apiKeys.col.name'), cell: (k) => h('span', {}, k.key_name, h('small', { class: 'muted block mono wrap' }, k.id)) },
      { label: t('apiKeys.col.key'), cell: (k) => h('span', { class: 'mono', dataset: { masked: '' } }, k.masked_key) },
      { label: t('apiKeys.col.owner'), cell: (k) => h('span', { class: 'mono', dataset: { field: 'owner' } }, k.owner) },
      {
        label: t('apiKeys.col.models'), cell: (k) => (k.allowed_models.length
          ? h('span', { class: 'mono wrap', dataset: { field: 'models' } }, fmtList(k.allowed_models))
          : h('span', { class: 'muted', dataset: { field: 'models' } }, t('apiKeys.everyModel'))),
      },
      {
        label: t('apiKeys.col.limits'), cell: (k) => {
          const list = limits(k);
          return list.length ? h('span', { class: 'lines', dataset: { field: 'limits' } }, list.map((l) => h('span', { class: 'nowrap' }, l)))
            : h('span', { class: 'muted', dataset: { field: 'limits' } }, t('common.none'));
        },
      },
      {
        label: t('apiKeys.col.state'), cell: (k) => {
          const el = badge(t(k.is_active ? 'apiKeys.active' : 'apiKeys.revoked'), k.is_active ? 'ok' : 'off');
          el.dataset.active = String(k.is_active);
          return el;
        },
      },
      {
        label: t('apiKeys.col.dates'), cell: (k) => h('span', { class: 'lines' },
          h('span', { class: 'nowrap', dataset: { field: 'created' } }, when(k.created_at)),
          k.revoked_at ? h('span', { class: 'nowrap muted', dataset: { field: 'revoked' } }, t('apiKeys.revokedAt', { time: when(k.revoked_at) })) : null),
      },
      {
        label: '', class: 'row-actions', cell: (k) => (k.is_active
          ? h('button', { type: 'button', class: 'ghost small danger-text', dataset: { action: 'revoke' }, onclick: () => revoke(k) }, t('apiKeys.revoke'))
          : null),
      },
    ], shown, {
      cards: true,
      empty: keys.length ? t('apiKeys.noMatch') : t('apiKeys.empty'),
      rowData: (k) => ({ apiKey: k.id, owner: k.owner }),
    })));
  }

  function create() {
    formDialog({
      title: t('apiKeys.createTitle'),
      intro: t('apiKeys.createIntro'),
      fields: [
        { name: 'owner', label: t('apiKeys.field.owner'), required: true, placeholder: 'user-42', hint: t('apiKeys.field.ownerHint') },
        { name: 'key_name', label: t('apiKeys.field.name'), required: true, placeholder: 'ci', hint: t('apiKeys.field.nameHint') },
        {
          name: 'allowed_models', label: t('apiKeys.field.models'), type: 'textarea', wide: true, rows: 2,
          placeholder: 'demo/echo smart', hint: t('apiKeys.field.modelsHint'),
        },
        { name: 'rate_limit_rpm', label: t('limitName.rpm'), type: 'number', min: 1, step: 1, placeholder: t('keys.field.noLimit') },
        {
          name: 'daily_token_budget', label: t('apiKeys.field.tokens'), type: 'number', min: 1, step: 1,
          placeholder: t('keys.field.noLimit'),
        },
        {
          // Dollars as a person types them ("5", "0.50", "0,50"); sent as micro-USD.
          name: 'daily_cost', label: t('apiKeys.field.cost'), inputmode: 'decimal', placeholder: t('keys.field.noLimit'),
          hint: t('apiKeys.field.costHint'),
        },
      ],
      submitLabel: t('apiKeys.create'),
      conflictInside: true, // a 409 here is a collision of new keys: trying again is right
      onSubmit: async (v) => {
        const dollars = parseDecimal(v.daily_cost);
        if (Number.isNaN(dollars) || dollars === 0) throw new Error(t('apiKeys.error.cost'));
        const body = {
          owner: v.owner,
          key_name: v.key_name,
          allowed_models: (v.allowed_models || '').split(/[\s,，、]+/).filter(Boolean),
          rate_limit_rpm: wholeNumber(v.rate_limit_rpm, t('limitName.rpm')),
          daily_token_budget: wholeNumber(v.daily_token_budget, t('apiKeys.field.tokens')),
          daily_cost_budget_micros: dollars === null ? null : Math.round(dollars * 1e6),
        };
        for (const name of ['rate_limit_rpm', 'daily_token_budget', 'daily_cost_budget_micros']) if (body[name] === null) delete body[name];
        const created = await api('/api/admin/api-keys', { method: 'POST', body });
        load();
        // Once this form has closed (and handed the focus back), the key in a dialog of its own.
        setTimeout(() => showOnce(created));
      },
    });
  }

  function revoke(k) {
    confirmDialog({
      title: t('apiKeys.revokeTitle', { name: k.key_name }),
      message: t('apiKeys.revokeMessage', { masked: k.masked_key, owner: k.owner }),
      confirmLabel: t('apiKeys.revoke'),
      onConfirm: async () => {
        await api(`/api/admin/api-keys/${encodeURIComponent(k.id)}`, { method: 'DELETE' });
        toast(t('apiKeys.revokedToast', { name: k.key_name }));
        await load();
      },
    });
  }

  load();
  return null;
}

/**
 * The new key, this once: a read-only field, a copy button and a warning. Nothing keeps it: the
 * dialog is removed when closed, and with it the only copy on the page.
 */
function showOnce(created) {
  const field = h('input', {
    id: 'new-api-key', class: 'mono secret-once', type: 'text', readonly: true, value: created.api_key,
    autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'new-api-key-warning',
  });
  const copied = h('span', { class: 'muted small', role: 'status' });
  const copy = h('button', { type: 'button', class: 'primary', dataset: { action: 'copy' } }, t('apiKeys.copy'));
  copy.addEventListener('click', async () => {
    field.focus();
    field.select();
    try {
      await navigator.clipboard.writeText(field.value);
      copied.textContent = t('apiKeys.copied');
    } catch {
      // No clipboard access (permissions, an insecure origin): the key is selected for Ctrl+C.
      copied.textContent = t('apiKeys.copyByHand');
    }
  });
  modal({
    title: t('apiKeys.onceTitle', { name: created.key_name }),
    name: 'new-api-key',
    content: [
      notice('warn', h('strong', { id: 'new-api-key-warning' }, t('apiKeys.onceWarning'))),
      h('div', { class: 'field' }, h('label', { for: 'new-api-key' }, t('apiKeys.onceLabel', { owner: created.owner })),
        h('div', { class: 'copy-row' }, field, copy), copied),
      h('p', { class: 'muted small' }, t('apiKeys.onceNext', { masked: created.masked_key })),
    ],
    footer: (close) => h('button', { type: 'button', class: 'ghost', dataset: { action: 'done' }, onclick: close }, t('apiKeys.onceDone')),
  });
  field.focus();
  field.select();
}
