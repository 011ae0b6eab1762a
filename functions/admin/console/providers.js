// Providers and their keys: list, add, edit, activate/deactivate, delete (after a confirmation),
// validate a key (its model list), test a key with a real call (one key, or every key of a
// provider), sync a provider's models. A key shows why it failed last, and when. Secrets are write-only: a key's secret is typed into a password field that
// is removed with its dialog after saving, and the list only ever shows the API's `masked_key`.

import { api, reloadIfStale, remove, seg, update } from './api.js';
import {
  activeBadge, badge, clear, confirmDialog, errorBox, formDialog, h, notice, pageHeader, spinner, statusBadge, table, toast,
} from './dom.js';
import { fmtDuration, fmtList, fmtMoney, fmtNumber, fmtRelative, t } from './i18n.js';

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
  main.append(pageHeader(t('providers.title'), t('providers.help'),
    h('button', { type: 'button', class: 'primary', dataset: { action: 'add-provider' }, onclick: () => providerDialog(null) },
      t('providers.add'))), body);

  async function load() {
    if (!body.childElementCount) body.append(spinner(t('providers.loading')));
    let providers;
    try {
      providers = (await api('/api/admin/ai-providers')).data;
    } catch (e) {
      clear(body, errorBox(e, load));
      return;
    }
    clear(body, providers.length ? providers.map(providerCard) : h('p', { class: 'empty' }, t('providers.empty')));
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
    const button = (label, name, action, kind = 'ghost') => {
      const b = h('button', { type: 'button', class: `${kind} small`, dataset: { action: name } }, label);
      b.addEventListener('click', () => click(b, action));
      return b;
    };
    return h('section', { class: 'card provider', dataset: { provider: p.provider_code } },
      h('div', { class: 'card-head' },
        h('div', { class: 'title' },
          h('h2', {}, p.provider_name),
          h('span', { class: 'mono muted' }, p.provider_code), badge(p.kind.replace('_', '-')), activeBadge(p.is_active)),
        h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'ghost small', dataset: { action: 'edit' }, onclick: () => providerDialog(p) }, t('common.edit')),
          button(t(p.is_active ? 'common.deactivate' : 'common.activate'), p.is_active ? 'deactivate' : 'activate', () => write(
            () => update(`/api/admin/ai-providers/${seg(p.provider_code)}`, p, { is_active: !p.is_active }),
            t(p.is_active ? 'providers.deactivated' : 'providers.activated', { code: p.provider_code }))),
          p.kind === 'demo' ? null : button(t('providers.syncModels'), 'sync', () => sync(p)),
          p.keys.length ? button(t('providers.testAll'), 'test-all', () => testAll(p)) : null,
          p.kind === 'demo' ? null
            : h('button', { type: 'button', class: 'ghost small danger-text', dataset: { action: 'delete-provider' }, onclick: () => deleteProvider(p) },
              t('common.delete')),
          h('button', { type: 'button', class: 'primary small', dataset: { action: 'add-key' }, onclick: () => keyDialog(p, null) },
            t('providers.addKey')))),
      h('dl', { class: 'meta' },
        h('dt', {}, t('providers.meta.baseUrl')), h('dd', { class: 'mono' }, p.base_url),
        h('dt', {}, t('providers.meta.models')),
        h('dd', { dataset: { field: 'models' } }, t('providers.meta.modelsValue', { active: fmtNumber(activeModels), total: fmtNumber(p.models.length) })),
        h('dt', {}, t('providers.meta.sortOrder')), h('dd', {}, String(p.sort_order)),
        headers.length
          ? [h('dt', {}, t('providers.meta.headers')), h('dd', { class: 'mono' }, headers.map(([k, v]) => `${k}: ${v}`).join(', '))]
          : null,
        p.description ? [h('dt', {}, t('providers.meta.about')), h('dd', {}, p.description)] : null),
      h('div', { class: 'outcome' }, outcomes.get(p.provider_code) || null),
      keysTable(p));
  }

  function keysTable(p) {
    const keyButton = (label, name, action) => {
      const b = h('button', { type: 'button', class: 'ghost small', dataset: { action: name } }, label);
      b.addEventListener('click', () => click(b, action));
      return b;
    };
    const limits = (k) => [['rpm', k.rate_limit_rpm], ['tpm', k.rate_limit_tpm], ['rpd', k.rate_limit_rpd]]
      .filter(([, v]) => v !== null).map(([n, v]) => t(`limit.${n}`, { value: fmtNumber(v) })).join(' · ') || t('common.none');
    return table([
      { label: t('providers.col.key'), cell: (k) => h('span', {}, k.key_name, h('small', { class: 'muted block mono' }, k.id)) },
      { label: t('providers.col.secret'), cell: (k) => h('span', { class: 'mono', dataset: { masked: '' } }, k.masked_key) },
      {
        label: t('providers.col.state'), cell: (k) => h('span', { class: 'lines' },
          h('span', { class: 'badges' }, statusBadge(k.status), activeBadge(k.is_active)),
          k.last_error_message ? h('small', { class: 'key-error', dataset: { lastError: '' }, title: k.last_error_message },
            t('providers.lastError', { message: k.last_error_message, when: fmtRelative(k.last_error_message_at) })) : null),
      },
      { label: t('providers.col.priority'), class: 'num', cell: (k) => h('span', { dataset: { field: 'priority' } }, String(k.priority)) },
      { label: t('providers.col.limits'), cell: (k) => h('span', { class: 'nowrap' }, limits(k)) },
      {
        label: t('providers.col.today'), class: 'num',
        cell: (k) => t('providers.today', { requests: fmtNumber(k.requests_count_today), tokens: fmtNumber(k.tokens_count_today) }),
      },
      { label: t('providers.col.lastUsed'), cell: (k) => (k.last_used_at ? fmtRelative(k.last_used_at) : t('common.never')) },
      {
        label: '', class: 'row-actions', cell: (k) => [
          keyButton(t('providers.validate'), 'validate', () => validate(p, k)),
          keyButton(t('providers.test'), 'test', () => test(p, k)),
          h('button', { type: 'button', class: 'ghost small', dataset: { action: 'edit' }, onclick: () => keyDialog(p, k) }, t('common.edit')),
          keyButton(t(k.is_active ? 'common.deactivate' : 'common.activate'), k.is_active ? 'deactivate' : 'activate', () => write(
            () => update(`/api/admin/ai-providers/keys/${seg(k.id)}`, k, { is_active: !k.is_active }),
            t(k.is_active ? 'providers.keyDeactivated' : 'providers.keyActivated', { name: k.key_name }))),
          h('button', { type: 'button', class: 'ghost small danger-text', dataset: { action: 'delete' }, onclick: () => deleteKey(k) }, t('common.delete')),
        ],
      },
    ], p.keys, { cards: true, empty: t('providers.keysEmpty'), rowData: (k) => ({ key: k.id }) });
  }

  function deleteKey(k) {
    confirmDialog({
      title: t('providers.deleteKeyTitle', { name: k.key_name }),
      message: t('providers.deleteKeyMessage', { masked: k.masked_key, id: k.id }),
      confirmLabel: t('common.delete'),
      onConfirm: async () => {
        await reloadIfStale(() => remove(`/api/admin/ai-providers/keys/${seg(k.id)}`, k), load);
        toast(t('providers.keyDeleted', { name: k.key_name }));
        await load();
      },
    });
  }

  function deleteProvider(p) {
    // Keys go one by one (each with its secret): a provider with keys is not offered for deletion.
    if (p.keys.length) {
      toast(t('providers.deleteHasKeys', { code: p.provider_code, keys: fmtNumber(p.keys.length) }), 'warn');
      return;
    }
    confirmDialog({
      title: t('providers.deleteTitle', { name: p.provider_name }),
      message: t('providers.deleteMessage', { code: p.provider_code, models: fmtNumber(p.models.length) }),
      confirmLabel: t('common.delete'),
      onConfirm: async () => {
        // A 409 (a route still uses its models, a key added meanwhile) is said in the dialog.
        await remove(`/api/admin/ai-providers/${seg(p.provider_code)}`, p);
        outcomes.delete(p.provider_code);
        toast(t('providers.deleted', { code: p.provider_code }));
        await load();
      },
    });
  }

  /** One key's test call, said in words: what the provider answered, what it cost, how long. */
  function testText(k, r) {
    const params = {
      name: k.key_name, model: r.model, latency: fmtDuration(r.latency_ms), cost: fmtMoney(r.cost_micros),
      http: r.http_status ? t('providers.http', { status: r.http_status }) : '', message: r.message || t('providers.noMessage'),
    };
    return t(`providers.test.${r.outcome}`, params);
  }
  const TEST_KIND = { ok: 'ok', invalid: 'error', rate_limited: 'warn', at_limit: 'warn', failed: 'error' };

  async function test(p, k) {
    showOutcome(p.provider_code, spinner(t('providers.testing', { name: k.key_name })));
    let r;
    try {
      r = await api(`/api/admin/ai-providers/keys/${seg(k.id)}/test`, { method: 'POST' });
    } catch (e) {
      showOutcome(p.provider_code, errorBox(e));
      return;
    }
    showOutcome(p.provider_code, notice(TEST_KIND[r.outcome] || 'info', h('strong', {}, t('providers.testCall')),
      h('span', { dataset: { test: r.outcome } }, testText(k, r))));
    await load();
  }

  /** Every key of a provider, one after another: a line each. */
  async function testAll(p) {
    showOutcome(p.provider_code, spinner(t('providers.testingAll', { count: fmtNumber(p.keys.length) })));
    const lines = [];
    let worst = 'ok';
    for (const k of p.keys) {
      try {
        const r = await api(`/api/admin/ai-providers/keys/${seg(k.id)}/test`, { method: 'POST' });
        if (r.outcome !== 'ok') worst = 'warn';
        lines.push(h('li', { dataset: { key: k.id, test: r.outcome } }, testText(k, r)));
      } catch (e) {
        worst = 'warn';
        lines.push(h('li', { dataset: { key: k.id, test: 'error' } }, `${k.key_name}: ${e.message}`));
      }
    }
    const passed = lines.filter((l) => l.dataset.test === 'ok').length;
    showOutcome(p.provider_code, notice(worst, h('strong', {}, t('providers.testAllDone', { ok: fmtNumber(passed), count: fmtNumber(lines.length) })),
      h('ul', { class: 'test-lines' }, lines)));
    await load();
  }

  // The outcome area of a provider's card, kept for the next reload of the list.
  function showOutcome(code, node) {
    outcomes.set(code, node);
    const area = body.querySelector(`section[data-provider="${CSS.escape(code)}"] .outcome`);
    if (area) clear(area, node);
  }

  async function validate(p, k) {
    showOutcome(p.provider_code, spinner(t('providers.validating', { name: k.key_name })));
    let report;
    try {
      report = await api(`/api/admin/ai-providers/keys/${seg(k.id)}/validate`, { method: 'POST' });
    } catch (e) {
      showOutcome(p.provider_code, errorBox(e));
      return;
    }
    // The provider's own message (report.message) is shown as it came.
    const params = {
      name: k.key_name,
      http: report.http_status ? t('providers.http', { status: report.http_status }) : '',
      count: fmtNumber(report.models_listed ?? 0),
    };
    const id = { valid: 'providers.valid', invalid: 'providers.invalid', rate_limited: 'providers.rateLimited', unreachable: 'providers.unreachable' }[report.outcome];
    const text = id && t(id, { ...params, message: report.message || (report.outcome === 'invalid' ? t('providers.noMessage') : '') });
    const kind = { valid: 'ok', invalid: 'error', rate_limited: 'warn', unreachable: 'warn' }[report.outcome] || 'info';
    showOutcome(p.provider_code, notice(kind, h('strong', {}, t('providers.validation')), text || report.outcome));
    await load(); // the key's status may have changed
  }

  async function sync(p) {
    showOutcome(p.provider_code, spinner(t('providers.syncing')));
    let r;
    try {
      r = await api(`/api/admin/ai-providers/${seg(p.provider_code)}/sync-models`, { method: 'POST' });
    } catch (e) {
      showOutcome(p.provider_code, errorBox(e));
      return;
    }
    const names = (list) => (list.length ? t('common.namesSuffix', { names: fmtList(list) }) : '');
    showOutcome(p.provider_code, notice('info', h('strong', {}, t('providers.sync')),
      t('providers.syncListed', { count: fmtNumber(r.listed) }),
      h('span', { dataset: { added: String(r.added.length) } },
        t('providers.syncAdded', { count: fmtNumber(r.added.length), names: names(r.added.map((m) => m.model_code)) })),
      t(r.added.length ? 'providers.syncAddedNote' : 'providers.syncNoneAdded'),
      t('providers.syncRest', { existing: fmtNumber(r.existing.length), missing: fmtNumber(r.not_listed.length), names: names(r.not_listed) })));
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
      title: p ? t('providers.editTitle', { name: p.provider_name }) : t('providers.addTitle'),
      name: 'provider',
      intro: p ? t('providers.editIntro') : null,
      fields: [
        p ? null : {
          name: 'provider_code', label: t('providers.field.code'), required: true, placeholder: 'local-vllm',
          pattern: '[a-z0-9][a-z0-9_\\-]{0,63}', hint: t('providers.field.codeHint'),
        },
        { name: 'provider_name', label: t('providers.field.name'), required: true, value: p?.provider_name },
        // Kind labels are the API's (its kinds table).
        p ? null : { name: 'kind', label: t('providers.field.kind'), type: 'select', options: kindList.options, value: 'openai_compatible' },
        {
          name: 'base_url', label: t('providers.field.baseUrl'), type: 'url', value: p?.base_url, placeholder: 'https://…/v1',
          hint: p ? null : t('providers.field.baseUrlHint', { kinds: fmtList(kindList.needUrl) }),
        },
        { name: 'sort_order', label: t('providers.field.sortOrder'), type: 'number', value: p?.sort_order ?? '', step: 1 },
        { name: 'description', label: t('providers.field.description'), type: 'textarea', value: p?.description ?? '', wide: true },
        {
          name: 'headers', label: t('providers.field.headers'), type: 'textarea', value: headerText, wide: true,
          placeholder: 'X-Team: music', hint: t('providers.field.headersHint'),
        },
        { name: 'is_active', label: t('providers.field.active'), type: 'checkbox', value: p ? p.is_active : true },
      ].filter(Boolean),
      submitLabel: p ? t('common.save') : t('providers.add'),
      onSubmit: (v) => {
        const headers = parseHeaders(v.headers);
        const fields = {
          provider_name: v.provider_name, is_active: v.is_active,
          ...(v.base_url ? { base_url: v.base_url } : {}),
          ...(v.sort_order !== null ? { sort_order: v.sort_order } : {}),
        };
        if (p) {
          return write(() => update(`/api/admin/ai-providers/${seg(p.provider_code)}`, p,
            { ...fields, description: v.description, config: { headers } }), t('providers.saved', { code: p.provider_code }));
        }
        // A 409 here is a code in use, not a stale version: the dialog stays with the input, the
        // code field marked.
        return api('/api/admin/ai-providers', {
          method: 'POST',
          body: { provider_code: v.provider_code, kind: v.kind, ...fields,
            ...(v.description ? { description: v.description } : {}),
            ...(Object.keys(headers).length ? { config: { headers } } : {}) },
        }).then(async () => {
          toast(t('providers.added', { code: v.provider_code }));
          await load();
        }, (e) => {
          if (e.status === 409) e.param = 'provider_code';
          throw e;
        });
      },
      conflictInside: !p,
    });
  }

  function keyDialog(p, k) {
    const limit = (name, value) => ({
      name: `rate_limit_${name}`, label: t(`limitName.${name}`), type: 'number', value: value ?? '', min: 1, step: 1,
      placeholder: t('keys.field.noLimit'),
    });
    formDialog({
      title: k ? t('keys.editTitle', { name: k.key_name }) : t('keys.addTitle', { provider: p.provider_name }),
      intro: k ? t('keys.editIntro', { masked: k.masked_key }) : t('keys.addIntro'),
      fields: [
        { name: 'key_name', label: t('keys.field.name'), required: true, value: k?.key_name, placeholder: 'team-b' },
        {
          name: 'api_key', label: t(k ? 'keys.field.newSecret' : 'keys.field.secret'), type: 'password', required: !k,
          placeholder: k ? t('keys.field.keepSecret') : 'sk-…',
        },
        { name: 'priority', label: t('keys.field.priority'), type: 'number', value: k?.priority ?? 0, step: 1, hint: t('keys.field.priorityHint') },
        limit('rpm', k?.rate_limit_rpm),
        limit('tpm', k?.rate_limit_tpm),
        limit('rpd', k?.rate_limit_rpd),
        { name: 'is_active', label: t('keys.field.active'), type: 'checkbox', value: k ? k.is_active : true },
      ],
      submitLabel: k ? t('common.save') : t('providers.addKey'),
      onSubmit: (v) => {
        const body = {
          key_name: v.key_name, priority: v.priority ?? 0, is_active: v.is_active,
          rate_limit_rpm: v.rate_limit_rpm, rate_limit_tpm: v.rate_limit_tpm, rate_limit_rpd: v.rate_limit_rpd,
          ...(v.api_key ? { api_key: v.api_key } : {}),
        };
        if (k) {
          return write(() => update(`/api/admin/ai-providers/keys/${seg(k.id)}`, k, body), t('providers.keySaved', { name: v.key_name }));
        }
        // A new key: limits left empty are simply not sent.
        for (const name of ['rate_limit_rpm', 'rate_limit_tpm', 'rate_limit_rpd']) if (body[name] === null) delete body[name];
        return write(() => api(`/api/admin/ai-providers/${seg(p.provider_code)}/keys`, { method: 'POST', body }),
          t('providers.keyAdded', { name: v.key_name }));
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
    if (at < 1) throw new Error(t('providers.headerLine', { line }));
    headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return headers;
}
