// Providers and their keys: list, add, edit, activate/deactivate, validate a key, sync a
// provider's models. Secrets are write-only: a key's secret is typed into a password field that
// is removed with its dialog after saving, and the list only ever shows the API's `masked_key`.

import { api, reloadIfStale, seg, update } from './api.js';
import {
  activeBadge, badge, clear, errorBox, formDialog, h, int, notice, pageHeader, relative, spinner, statusBadge,
  table, toast,
} from './dom.js';

// The kinds an admin may create, as the API lists them (its kinds table): [kind, label] pairs,
// and the kinds that need a base URL.
let kinds = null;
async function creatableKinds() {
  if (!kinds) {
    const all = (await api('/api/admin/ai-providers/kinds')).data.filter((k) => k.creatable);
    kinds = { options: all.map((k) => [k.kind, k.label]), needUrl: all.filter((k) => !k.default_base_url).map((k) => k.label) };
  }
  return kinds;
}

export function render(main) {
  const body = h('div', { class: 'stack' });
  // The last validation or sync outcome per provider, kept across reloads of the list.
  const outcomes = new Map();
  main.append(pageHeader('Providers and keys',
    'Keys are stored in the secret store and only ever shown masked.',
    h('button', { type: 'button', class: 'primary', onclick: () => providerDialog(null) }, 'Add provider')), body);

  async function load() {
    if (!body.childElementCount) body.append(spinner('Loading providers…'));
    let providers;
    try {
      providers = (await api('/api/admin/ai-providers')).data;
    } catch (e) {
      clear(body, errorBox(e, load));
      return;
    }
    clear(body, providers.length ? providers.map(providerCard) : h('p', { class: 'empty' }, 'No provider yet.'));
  }

  // A write, then the list again; a 409 reloads and says why.
  async function write(action, done) {
    const result = await reloadIfStale(action, load);
    if (done) toast(done);
    await load();
    return result;
  }

  // A one-click write (activate, validate, sync): failures become a toast, not a dialog.
  async function click(button, action) {
    button.disabled = true;
    try {
      await action();
    } catch (e) {
      toast(e.message, e.status === 409 ? 'warn' : 'error');
    } finally {
      button.disabled = false;
    }
  }

  function providerCard(p) {
    const activeModels = p.models.filter((m) => m.is_active).length;
    const headers = Object.entries(p.config.headers || {});
    const button = (label, action, kind = 'ghost') => {
      const b = h('button', { type: 'button', class: `${kind} small` }, label);
      b.addEventListener('click', () => click(b, action));
      return b;
    };
    return h('section', { class: 'card provider', dataset: { provider: p.provider_code } },
      h('div', { class: 'card-head' },
        h('div', { class: 'title' },
          h('h2', {}, p.provider_name),
          h('span', { class: 'mono muted' }, p.provider_code), badge(p.kind.replace('_', '-')), activeBadge(p.is_active)),
        h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'ghost small', onclick: () => providerDialog(p) }, 'Edit'),
          button(p.is_active ? 'Deactivate' : 'Activate', () => write(
            () => update(`/api/admin/ai-providers/${seg(p.provider_code)}`, p, { is_active: !p.is_active }),
            `Provider ${p.provider_code} ${p.is_active ? 'deactivated' : 'activated'}.`)),
          p.kind === 'demo' ? null : button('Sync models', () => sync(p)),
          h('button', { type: 'button', class: 'primary small', onclick: () => keyDialog(p, null) }, 'Add key'))),
      h('dl', { class: 'meta' },
        h('dt', {}, 'Base URL'), h('dd', { class: 'mono' }, p.base_url),
        h('dt', {}, 'Models'), h('dd', {}, `${activeModels} active of ${p.models.length}`),
        h('dt', {}, 'Sort order'), h('dd', {}, String(p.sort_order)),
        headers.length ? [h('dt', {}, 'Headers'), h('dd', { class: 'mono' }, headers.map(([k, v]) => `${k}: ${v}`).join(', '))] : null,
        p.description ? [h('dt', {}, 'About'), h('dd', {}, p.description)] : null),
      h('div', { class: 'outcome' }, outcomes.get(p.provider_code) || null),
      keysTable(p));
  }

  function keysTable(p) {
    const keyButton = (label, action) => {
      const b = h('button', { type: 'button', class: 'ghost small' }, label);
      b.addEventListener('click', () => click(b, action));
      return b;
    };
    const limits = (k) => [['rpm', k.rate_limit_rpm], ['tpm', k.rate_limit_tpm], ['rpd', k.rate_limit_rpd]]
      .filter(([, v]) => v !== null).map(([n, v]) => `${int(v)} ${n}`).join(' · ') || 'none';
    return table([
      { label: 'Key', cell: (k) => h('span', {}, k.key_name, h('small', { class: 'muted block mono' }, k.id)) },
      { label: 'Secret', cell: (k) => h('span', { class: 'mono', dataset: { masked: '' } }, k.masked_key) },
      { label: 'State', cell: (k) => h('span', { class: 'badges' }, statusBadge(k.status), activeBadge(k.is_active)) },
      { label: 'Priority', class: 'num', cell: (k) => String(k.priority) },
      { label: 'Limits', cell: (k) => h('span', { class: 'nowrap' }, limits(k)) },
      { label: 'Today', class: 'num', cell: (k) => `${int(k.requests_count_today)} req · ${int(k.tokens_count_today)} tok` },
      { label: 'Last used', cell: (k) => (k.last_used_at ? relative(k.last_used_at) : 'never') },
      {
        label: '', class: 'row-actions', cell: (k) => [
          keyButton('Validate', () => validate(p, k)),
          h('button', { type: 'button', class: 'ghost small', onclick: () => keyDialog(p, k) }, 'Edit'),
          keyButton(k.is_active ? 'Deactivate' : 'Activate', () => write(
            () => update(`/api/admin/ai-providers/keys/${seg(k.id)}`, k, { is_active: !k.is_active }),
            `Key ${k.key_name} ${k.is_active ? 'deactivated' : 'activated'}.`)),
        ],
      },
    ], p.keys, { empty: 'No key yet: add one to use this provider.', rowData: (k) => ({ key: k.id }) });
  }

  // The outcome area of a provider's card, kept for the next reload of the list.
  function showOutcome(code, node) {
    outcomes.set(code, node);
    const area = body.querySelector(`section[data-provider="${CSS.escape(code)}"] .outcome`);
    if (area) clear(area, node);
  }

  async function validate(p, k) {
    showOutcome(p.provider_code, spinner(`Validating ${k.key_name}…`));
    let report;
    try {
      report = await api(`/api/admin/ai-providers/keys/${seg(k.id)}/validate`, { method: 'POST' });
    } catch (e) {
      showOutcome(p.provider_code, errorBox(e));
      return;
    }
    const http = report.http_status ? ` (HTTP ${report.http_status})` : '';
    const text = {
      valid: `Key ${k.key_name} is valid: the provider listed ${int(report.models_listed ?? 0)} models. Its status is normal.`,
      invalid: `Key ${k.key_name} was refused${http}: ${report.message || 'no message'}. Its status is now invalid.`,
      rate_limited: `Key ${k.key_name} is limited right now${http}: ${report.message || ''} Its status is unchanged.`,
      unreachable: `The provider could not be reached${http}: ${report.message || ''} Nothing is known about the key.`,
    }[report.outcome];
    const kind = { valid: 'ok', invalid: 'error', rate_limited: 'warn', unreachable: 'warn' }[report.outcome] || 'info';
    showOutcome(p.provider_code, notice(kind, h('strong', {}, 'Validation: '), text || report.outcome));
    await load(); // the key's status may have changed
  }

  async function sync(p) {
    showOutcome(p.provider_code, spinner('Reading the provider’s models…'));
    let r;
    try {
      r = await api(`/api/admin/ai-providers/${seg(p.provider_code)}/sync-models`, { method: 'POST' });
    } catch (e) {
      showOutcome(p.provider_code, errorBox(e));
      return;
    }
    const names = (list) => (list.length ? `: ${list.join(', ')}` : '');
    showOutcome(p.provider_code, notice('info', h('strong', {}, 'Sync: '),
      `the provider listed ${int(r.listed)} models. `,
      h('span', { dataset: { added: String(r.added.length) } }, `Added ${r.added.length}${names(r.added.map((m) => m.model_code))}`),
      r.added.length ? ' (inactive and unpriced: price and activate them under Models). ' : '. ',
      `Already in the catalog: ${r.existing.length}. In the catalog but not listed: ${r.not_listed.length}${names(r.not_listed)}.`));
    await load(); // the model counts changed
  }

  async function providerDialog(p) {
    let kindList;
    try {
      kindList = p ? null : await creatableKinds();
    } catch (e) {
      toast(e.message || String(e), 'error');
      return;
    }
    const headerText = p ? Object.entries(p.config.headers || {}).map(([k, v]) => `${k}: ${v}`).join('\n') : '';
    formDialog({
      title: p ? `Edit ${p.provider_name}` : 'Add a provider',
      intro: p ? 'Masked header values sent back keep the stored ones.' : null,
      fields: [
        p ? null : { name: 'provider_code', label: 'Code', required: true, placeholder: 'local-vllm', pattern: '[a-z0-9][a-z0-9_\\-]{0,63}', hint: 'a-z, 0-9, _ and -; used in model names (code/model)' },
        { name: 'provider_name', label: 'Name', required: true, value: p?.provider_name },
        p ? null : { name: 'kind', label: 'Kind', type: 'select', options: kindList.options, value: 'openai_compatible' },
        { name: 'base_url', label: 'Base URL', type: 'url', value: p?.base_url, placeholder: 'https://…/v1', hint: p ? null : `Required for ${kindList.needUrl.join(', ')}; the others have a default` },
        { name: 'sort_order', label: 'Sort order', type: 'number', value: p?.sort_order ?? '', step: 1 },
        { name: 'description', label: 'Description', type: 'textarea', value: p?.description ?? '', wide: true },
        { name: 'headers', label: 'Extra headers', type: 'textarea', value: headerText, wide: true, placeholder: 'X-Team: music', hint: 'One "Name: value" per line' },
        { name: 'is_active', label: 'Active', type: 'checkbox', value: p ? p.is_active : true },
      ].filter(Boolean),
      submitLabel: p ? 'Save' : 'Add provider',
      onSubmit: (v) => {
        const headers = parseHeaders(v.headers);
        const fields = {
          provider_name: v.provider_name, is_active: v.is_active,
          ...(v.base_url ? { base_url: v.base_url } : {}),
          ...(v.sort_order !== null ? { sort_order: v.sort_order } : {}),
        };
        if (p) {
          return write(() => update(`/api/admin/ai-providers/${seg(p.provider_code)}`, p,
            { ...fields, description: v.description, config: { headers } }), `Provider ${p.provider_code} saved.`);
        }
        return write(() => api('/api/admin/ai-providers', {
          method: 'POST',
          body: { provider_code: v.provider_code, kind: v.kind, ...fields,
            ...(v.description ? { description: v.description } : {}),
            ...(Object.keys(headers).length ? { config: { headers } } : {}) },
        }), `Provider ${v.provider_code} added.`);
      },
    });
  }

  function keyDialog(p, k) {
    const limit = (name, label, value) => ({ name, label, type: 'number', value: value ?? '', min: 1, step: 1, placeholder: 'no limit' });
    formDialog({
      title: k ? `Edit key ${k.key_name}` : `Add a key to ${p.provider_name}`,
      intro: k ? `Current secret: ${k.masked_key}. It is never shown in full.` : 'The secret is stored in the secret store and shown masked from now on.',
      fields: [
        { name: 'key_name', label: 'Name', required: true, value: k?.key_name, placeholder: 'team-b' },
        { name: 'api_key', label: k ? 'New secret (rotates the key)' : 'Secret', type: 'password', required: !k, placeholder: k ? 'leave empty to keep the current one' : 'sk-…' },
        { name: 'priority', label: 'Priority', type: 'number', value: k?.priority ?? 0, step: 1, hint: 'Higher first' },
        limit('rate_limit_rpm', 'Requests per minute', k?.rate_limit_rpm),
        limit('rate_limit_tpm', 'Tokens per minute', k?.rate_limit_tpm),
        limit('rate_limit_rpd', 'Requests per day', k?.rate_limit_rpd),
        { name: 'is_active', label: 'Active', type: 'checkbox', value: k ? k.is_active : true },
      ],
      submitLabel: k ? 'Save' : 'Add key',
      onSubmit: (v) => {
        const body = {
          key_name: v.key_name, priority: v.priority ?? 0, is_active: v.is_active,
          rate_limit_rpm: v.rate_limit_rpm, rate_limit_tpm: v.rate_limit_tpm, rate_limit_rpd: v.rate_limit_rpd,
          ...(v.api_key ? { api_key: v.api_key } : {}),
        };
        if (k) {
          return write(() => update(`/api/admin/ai-providers/keys/${seg(k.id)}`, k, body), `Key ${v.key_name} saved.`);
        }
        // A new key: limits left empty are simply not sent.
        for (const name of ['rate_limit_rpm', 'rate_limit_tpm', 'rate_limit_rpd']) if (body[name] === null) delete body[name];
        return write(() => api(`/api/admin/ai-providers/${seg(p.provider_code)}/keys`, { method: 'POST', body }),
          `Key ${v.key_name} added.`);
      },
    });
  }

  load();
  return null;
}

/** "Name: value" lines → an object; a line without a colon is a mistake worth saying. */
function parseHeaders(text) {
  const headers = {};
  for (const line of (text || '').split('\n').map((l) => l.trim()).filter(Boolean)) {
    const at = line.indexOf(':');
    if (at < 1) throw new Error(`Each header line is "Name: value"; "${line}" is not.`);
    headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return headers;
}
