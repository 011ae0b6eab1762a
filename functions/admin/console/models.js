// Models of every provider: list (filtered here, by provider, state and name), edit prices,
// limits and flags, activate/deactivate. Prices are entered in dollars per million tokens and
// sent as the catalog's integer micro-USD.

import { api, reloadIfStale, seg, update } from './api.js';
import { activeBadge, badge, clear, errorBox, formDialog, h, pageHeader, spinner, table, toast } from './dom.js';
import { fmtMoney, fmtNumber, t } from './i18n.js';

const toMicros = (dollars) => (dollars === null ? null : Math.round(dollars * 1e6));
const toDollars = (micros) => (micros === null || micros === undefined ? '' : String(micros / 1e6));

export function render(main) {
  const filters = { provider: '', state: '', text: '' };
  let models = [];
  const body = h('div', { class: 'stack' }, spinner(t('models.loading')));
  const providerSelect = h('select', { id: 'models-provider', 'aria-label': t('models.filterProvider') },
    h('option', { value: '' }, t('models.everyProvider')));
  const stateSelect = h('select', { id: 'models-state', 'aria-label': t('models.filterState') },
    h('option', { value: '' }, t('models.anyState')), h('option', { value: 'active' }, t('models.active')),
    h('option', { value: 'inactive' }, t('models.inactive')));
  const search = h('input', { type: 'search', id: 'models-search', placeholder: t('models.search'), 'aria-label': t('models.search') });
  providerSelect.addEventListener('change', () => { filters.provider = providerSelect.value; show(); });
  stateSelect.addEventListener('change', () => { filters.state = stateSelect.value; show(); });
  search.addEventListener('input', () => { filters.text = search.value.trim().toLowerCase(); show(); });
  main.append(pageHeader(t('models.title'), t('models.help')),
    h('div', { class: 'toolbar' }, providerSelect, stateSelect, search), body);

  async function load() {
    try {
      models = (await api('/api/admin/ai-models')).data;
    } catch (e) {
      clear(body, errorBox(e, load));
      return;
    }
    const codes = [...new Set(models.map((m) => m.provider_code))].sort();
    clear(providerSelect, h('option', { value: '' }, t('models.everyProvider')),
      codes.map((c) => h('option', { value: c, selected: c === filters.provider }, c)));
    show();
  }

  function show() {
    const shown = models.filter((m) => (!filters.provider || m.provider_code === filters.provider)
      && (!filters.state || m.is_active === (filters.state === 'active'))
      && (!filters.text || `${m.id} ${m.model_name || ''}`.toLowerCase().includes(filters.text)));
    clear(body, h('section', { class: 'card flush' }, table([
      {
        label: t('models.col.model'),
        cell: (m) => h('span', {}, h('span', { class: 'mono' }, m.id), m.model_name ? h('small', { class: 'muted block' }, m.model_name) : null),
      },
      {
        label: t('models.col.tokens'), class: 'num', cell: (m) => h('span', {}, fmtNumber(m.max_input_tokens),
          h('small', { class: 'muted block' }, t('models.out', { count: fmtNumber(m.max_output_tokens) }))),
      },
      {
        // Micro-USD per million tokens, shown as dollars per million tokens.
        label: t('models.col.prices'), class: 'num', cell: (m) => h('span', { dataset: { prices: '' } },
          `${fmtMoney(m.prices.input_price)} / ${fmtMoney(m.prices.output_price)}`,
          m.prices.cached_input_price === null ? null
            : h('small', { class: 'muted block' }, t('models.cached', { price: fmtMoney(m.prices.cached_input_price) }))),
      },
      {
        label: t('models.col.supports'), cell: (m) => h('span', { class: 'badges' },
          m.supports_streaming ? badge(t('models.stream')) : null, m.supports_function_call ? badge(t('models.tools')) : null,
          m.supports_vision ? badge(t('models.vision')) : null),
      },
      {
        label: t('models.col.state'),
        cell: (m) => h('span', { class: 'badges' }, activeBadge(m.is_active), m.is_default ? badge(t('models.default'), 'info') : null),
      },
      {
        label: '', class: 'row-actions', cell: (m) => {
          const toggle = h('button', { type: 'button', class: 'ghost small', dataset: { action: m.is_active ? 'deactivate' : 'activate' } },
            t(m.is_active ? 'common.deactivate' : 'common.activate'));
          toggle.addEventListener('click', async () => {
            toggle.disabled = true;
            try {
              await write(m, { is_active: !m.is_active }, t(m.is_active ? 'models.deactivated' : 'models.activated', { id: m.id }));
            } catch (e) {
              toast(e.message, e.status === 409 ? 'warn' : 'error');
              toggle.disabled = false;
            }
          });
          return [h('button', { type: 'button', class: 'ghost small', dataset: { action: 'edit' }, onclick: () => edit(m) }, t('common.edit')), toggle];
        },
      },
    ], shown, { empty: t('models.empty'), rowData: (m) => ({ model: m.id }) })));
  }

  async function write(m, changes, done) {
    await reloadIfStale(() => update(`/api/admin/ai-models/${seg(m.id)}`, m, changes), load);
    toast(done);
    await load();
  }

  function edit(m) {
    const price = (name, label, value, optional) => ({
      name, label, type: 'number', value: toDollars(value), min: 0, step: 'any', inputmode: 'decimal',
      placeholder: optional ? t('models.asInput') : '0', hint: optional ? t('models.asInputHint') : null, required: !optional,
    });
    const count = (name, label, value) => ({ name, label, type: 'number', value: value ?? '', min: 1, step: 1, placeholder: t('models.unknown') });
    formDialog({
      title: t('models.editTitle', { id: m.id }),
      intro: t('models.editIntro'),
      fields: [
        { name: 'model_name', label: t('models.field.displayName'), value: m.model_name ?? '' },
        count('max_input_tokens', t('models.field.context'), m.max_input_tokens),
        count('max_output_tokens', t('models.field.maxOutput'), m.max_output_tokens),
        price('input_price', t('models.field.inputPrice'), m.prices.input_price),
        price('output_price', t('models.field.outputPrice'), m.prices.output_price),
        price('cached_input_price', t('models.field.cachedPrice'), m.prices.cached_input_price, true),
        price('cache_write_price', t('models.field.cacheWritePrice'), m.prices.cache_write_price, true),
        { name: 'supports_streaming', label: t('models.field.streaming'), type: 'checkbox', value: m.supports_streaming },
        { name: 'supports_function_call', label: t('models.field.tools'), type: 'checkbox', value: m.supports_function_call },
        { name: 'supports_vision', label: t('models.field.vision'), type: 'checkbox', value: m.supports_vision },
        { name: 'is_active', label: t('models.field.active'), type: 'checkbox', value: m.is_active },
        { name: 'is_default', label: t('models.field.default'), type: 'checkbox', value: m.is_default },
      ],
      onSubmit: (v) => write(m, {
        model_name: v.model_name,
        max_input_tokens: v.max_input_tokens,
        max_output_tokens: v.max_output_tokens,
        prices: {
          input_price: toMicros(v.input_price ?? 0),
          output_price: toMicros(v.output_price ?? 0),
          cached_input_price: toMicros(v.cached_input_price),
          cache_write_price: toMicros(v.cache_write_price),
        },
        supports_streaming: v.supports_streaming,
        supports_function_call: v.supports_function_call,
        supports_vision: v.supports_vision,
        is_active: v.is_active,
        is_default: v.is_default,
      }, t('models.saved', { id: m.id })),
    });
  }

  load();
  return null;
}
