// Models of every provider: list (filtered here, by provider, state and name), edit prices,
// limits and flags, activate/deactivate. Prices are entered in dollars per million tokens and
// sent as the catalog's integer micro-USD.

import { api, reloadIfStale, seg, update } from './api.js';
import {
  activeBadge, badge, clear, errorBox, formDialog, h, int, pageHeader, pricePerMillion, spinner, table, toast,
} from './dom.js';

const toMicros = (dollars) => (dollars === null ? null : Math.round(dollars * 1e6));
const toDollars = (micros) => (micros === null || micros === undefined ? '' : String(micros / 1e6));

export function render(main) {
  const filters = { provider: '', state: '', text: '' };
  let models = [];
  const body = h('div', { class: 'stack' }, spinner('Loading models…'));
  const providerSelect = h('select', { id: 'models-provider', 'aria-label': 'Provider' }, h('option', { value: '' }, 'Every provider'));
  const stateSelect = h('select', { id: 'models-state', 'aria-label': 'State' },
    h('option', { value: '' }, 'Active and inactive'), h('option', { value: 'active' }, 'Active'), h('option', { value: 'inactive' }, 'Inactive'));
  const search = h('input', { type: 'search', id: 'models-search', placeholder: 'Search models', 'aria-label': 'Search models' });
  providerSelect.addEventListener('change', () => { filters.provider = providerSelect.value; show(); });
  stateSelect.addEventListener('change', () => { filters.state = stateSelect.value; show(); });
  search.addEventListener('input', () => { filters.text = search.value.trim().toLowerCase(); show(); });
  main.append(pageHeader('Models', 'Synced models arrive inactive, priced only where Maestro ships a price: check the prices, then activate them.'),
    h('div', { class: 'toolbar' }, providerSelect, stateSelect, search), body);

  async function load() {
    try {
      models = (await api('/api/admin/ai-models')).data;
    } catch (e) {
      clear(body, errorBox(e, load));
      return;
    }
    const codes = [...new Set(models.map((m) => m.provider_code))].sort();
    clear(providerSelect, h('option', { value: '' }, 'Every provider'),
      codes.map((c) => h('option', { value: c, selected: c === filters.provider }, c)));
    show();
  }

  function show() {
    const shown = models.filter((m) => (!filters.provider || m.provider_code === filters.provider)
      && (!filters.state || m.is_active === (filters.state === 'active'))
      && (!filters.text || `${m.id} ${m.model_name || ''}`.toLowerCase().includes(filters.text)));
    clear(body, h('section', { class: 'card flush' }, table([
      { label: 'Model', cell: (m) => h('span', {}, h('span', { class: 'mono' }, m.id), m.model_name ? h('small', { class: 'muted block' }, m.model_name) : null) },
      {
        label: 'Tokens in / out', class: 'num', cell: (m) => h('span', {}, int(m.max_input_tokens),
          h('small', { class: 'muted block' }, `out ${int(m.max_output_tokens)}`)),
      },
      {
        label: '$ per 1M in / out', class: 'num', cell: (m) => h('span', { dataset: { prices: '' } },
          `${pricePerMillion(m.prices.input_price)} / ${pricePerMillion(m.prices.output_price)}`,
          m.prices.cached_input_price === null ? null
            : h('small', { class: 'muted block' }, `cached ${pricePerMillion(m.prices.cached_input_price)}`)),
      },
      {
        label: 'Supports', cell: (m) => h('span', { class: 'badges' },
          m.supports_streaming ? badge('stream') : null, m.supports_function_call ? badge('tools') : null,
          m.supports_vision ? badge('vision') : null),
      },
      { label: 'State', cell: (m) => h('span', { class: 'badges' }, activeBadge(m.is_active), m.is_default ? badge('default', 'info') : null) },
      {
        label: '', class: 'row-actions', cell: (m) => {
          const toggle = h('button', { type: 'button', class: 'ghost small' }, m.is_active ? 'Deactivate' : 'Activate');
          toggle.addEventListener('click', async () => {
            toggle.disabled = true;
            try {
              await write(m, { is_active: !m.is_active }, `${m.id} ${m.is_active ? 'deactivated' : 'activated'}.`);
            } catch (e) {
              toast(e.message, e.status === 409 ? 'warn' : 'error');
              toggle.disabled = false;
            }
          });
          return [h('button', { type: 'button', class: 'ghost small', onclick: () => edit(m) }, 'Edit'), toggle];
        },
      },
    ], shown, { empty: 'No model matches.', rowData: (m) => ({ model: m.id }) })));
  }

  async function write(m, changes, done) {
    await reloadIfStale(() => update(`/api/admin/ai-models/${seg(m.id)}`, m, changes), load);
    toast(done);
    await load();
  }

  function edit(m) {
    const price = (name, label, value, optional) => ({
      name, label, type: 'number', value: toDollars(value), min: 0, step: 'any', inputmode: 'decimal',
      placeholder: optional ? 'as input' : '0', hint: optional ? 'Empty: billed as input' : null, required: !optional,
    });
    const count = (name, label, value) => ({ name, label, type: 'number', value: value ?? '', min: 1, step: 1, placeholder: 'unknown' });
    formDialog({
      title: `Edit ${m.id}`,
      intro: 'Prices are US dollars per million tokens.',
      fields: [
        { name: 'model_name', label: 'Display name', value: m.model_name ?? '' },
        count('max_input_tokens', 'Context (input tokens)', m.max_input_tokens),
        count('max_output_tokens', 'Max output tokens', m.max_output_tokens),
        price('input_price', 'Input $/1M', m.prices.input_price),
        price('output_price', 'Output $/1M', m.prices.output_price),
        price('cached_input_price', 'Cached input $/1M', m.prices.cached_input_price, true),
        price('cache_write_price', 'Cache write $/1M', m.prices.cache_write_price, true),
        { name: 'supports_streaming', label: 'Streaming', type: 'checkbox', value: m.supports_streaming },
        { name: 'supports_function_call', label: 'Tools', type: 'checkbox', value: m.supports_function_call },
        { name: 'supports_vision', label: 'Vision', type: 'checkbox', value: m.supports_vision },
        { name: 'is_active', label: 'Active', type: 'checkbox', value: m.is_active },
        { name: 'is_default', label: 'Default for its name', type: 'checkbox', value: m.is_default },
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
      }, `${m.id} saved.`),
    });
  }

  load();
  return null;
}
