// Models of every provider: list (filtered here, by provider, state and name), edit prices,
// limits and flags, activate/deactivate, one at a time or for the selected models at once.
// Prices are typed in dollars per million tokens ("0.15", or "0,15" with a comma as the decimal
// sign) and sent as the catalog's integer micro-USD. Before a save the form shows what the prices
// mean for a typical call, and a save that activates an unpriced model (billed at $0.00) or moves
// a price by more than 10× asks first.

import { api, reloadIfStale, seg, update } from './api.js';
import {
  Cancelled, FieldError, activeBadge, ask, badge, clear, errorBox, formDialog, h, pageHeader, parseDecimal, spinner, table, toast,
} from './dom.js';
import { fmtMoney, fmtNumber, t } from './i18n.js';

const toDollars = (micros) => (micros === null || micros === undefined ? '' : String(micros / 1e6));

// What a typical call is taken to be in the preview: 1,000 tokens in, 500 out.
const TYPICAL = { input: 1_000, output: 500 };
// A price moving by more than this factor is asked about.
const JUMP = 10;
const PRICE_FIELDS = ['input_price', 'output_price', 'cached_input_price', 'cache_write_price'];

/**
 * A price as typed, in dollars per million tokens, as micro-USD: null when empty. A comma is the
 * decimal sign ("0,15"); "1,500" could mean either and is refused, as is anything else that is
 * not a plain decimal or has more than 6 decimals (below a micro-USD).
 */
export function priceMicros(raw, field) {
  const text = String(raw ?? '').trim();
  if (text === '') return null;
  if (/^\d{1,3},\d{3}$/.test(text.replace(/\s+/g, ''))) throw new FieldError(field, t('models.error.ambiguous', { value: text }));
  const dollars = parseDecimal(text);
  const decimals = (text.replace(',', '.').split('.')[1] || '').length;
  if (Number.isNaN(dollars) || decimals > 6) throw new FieldError(field, t('models.error.price', { value: text }));
  return Math.round(dollars * 1e6);
}

/** Micro-USD of `tokens` at `price` micro-USD per million, rounded as Maestro bills. */
const costOf = (tokens, price) => Math.round((tokens * (price || 0)) / 1e6);

/** The preview line: the prices per million tokens and the cost of a typical call. */
function previewText(input, output) {
  return t('models.preview', {
    input: fmtMoney(input), output: fmtMoney(output),
    call: fmtMoney(costOf(TYPICAL.input, input) + costOf(TYPICAL.output, output)),
    tokensIn: fmtNumber(TYPICAL.input), tokensOut: fmtNumber(TYPICAL.output),
  });
}

const unpriced = (prices) => !prices.input_price && !prices.output_price;

/**
 * What a change does that deserves a second look: activating a model billed at $0.00, and any
 * price moving by more than 10× (either way). One line each.
 */
export function risks(model, next) {
  const out = [];
  const prices = { ...model.prices, ...(next.prices || {}) };
  const active = next.is_active ?? model.is_active;
  if (active && unpriced(prices) && (!model.is_active || !unpriced(model.prices))) {
    out.push(t('models.risk.unpriced', { id: model.id }));
  }
  for (const field of PRICE_FIELDS) {
    const before = model.prices[field];
    const after = next.prices?.[field];
    if (!before || !after || before === after) continue;
    const factor = after > before ? after / before : before / after;
    if (factor > JUMP) {
      out.push(t('models.risk.jump', {
        id: model.id, field: t(`models.price.${field}`), before: fmtMoney(before), after: fmtMoney(after), factor: fmtNumber(Math.round(factor)),
      }));
    }
  }
  return out;
}

/** Asks about `lines` (nothing to ask: yes). */
async function confirmRisks(lines, confirmLabel) {
  if (!lines.length) return true;
  return ask({ title: t('models.confirmTitle'), message: t('models.confirmMessage'), items: lines, confirmLabel });
}

export function render(main) {
  const filters = { provider: '', state: '', text: '' };
  let models = [];
  // Selected model ids, kept while the filters change (only shown ones are acted on).
  const selected = new Set();
  const body = h('div', { class: 'stack' }, spinner(t('models.loading')));
  const bulk = h('div', { class: 'bulk-bar', role: 'region', 'aria-label': t('models.bulk.label'), hidden: true });
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
    h('div', { class: 'toolbar' }, providerSelect, stateSelect, search), bulk, body);

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
    for (const id of [...selected]) if (!models.some((m) => m.id === id)) selected.delete(id);
    show();
  }

  const shownModels = () => models.filter((m) => (!filters.provider || m.provider_code === filters.provider)
    && (!filters.state || m.is_active === (filters.state === 'active'))
    && (!filters.text || `${m.id} ${m.model_name || ''}`.toLowerCase().includes(filters.text)));
  const chosen = () => shownModels().filter((m) => selected.has(m.id));

  function show() {
    const shown = shownModels();
    const all = h('input', {
      type: 'checkbox', id: 'models-select-all', 'aria-label': t('models.bulk.selectAll'),
      checked: shown.length > 0 && shown.every((m) => selected.has(m.id)),
    });
    all.indeterminate = !all.checked && shown.some((m) => selected.has(m.id));
    all.addEventListener('change', () => {
      for (const m of shown) {
        if (all.checked) selected.add(m.id);
        else selected.delete(m.id);
      }
      show();
    });
    clear(body, h('section', { class: 'card flush' }, table([
      {
        label: '', head: all, class: 'select', cell: (m) => {
          const box = h('input', { type: 'checkbox', checked: selected.has(m.id), 'aria-label': t('models.bulk.select', { id: m.id }), dataset: { select: '' } });
          box.addEventListener('change', () => {
            if (box.checked) selected.add(m.id);
            else selected.delete(m.id);
            show();
          });
          return box;
        },
      },
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
            : h('small', { class: 'muted block' }, t('models.cached', { price: fmtMoney(m.prices.cached_input_price) })),
          unpriced(m.prices) ? h('small', { class: 'block' }, badge(t('models.unpriced'), 'warn')) : null),
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
              if (!(await confirmRisks(risks(m, { is_active: !m.is_active }), t('common.activate')))) return;
              await write(m, { is_active: !m.is_active }, t(m.is_active ? 'models.deactivated' : 'models.activated', { id: m.id }));
            } catch (e) {
              toast(e.message, e.status === 409 ? 'warn' : 'error');
            } finally {
              toggle.disabled = false;
            }
          });
          return [h('button', { type: 'button', class: 'ghost small', dataset: { action: 'edit' }, onclick: () => edit(m) }, t('common.edit')), toggle];
        },
      },
    ], shown, { cards: true, empty: t('models.empty'), rowData: (m) => ({ model: m.id }) })));
    showBulk();
  }

  function showBulk() {
    const list = chosen();
    bulk.hidden = list.length === 0;
    if (!list.length) {
      clear(bulk);
      return;
    }
    const button = (label, action, run, kind = 'ghost') => h('button', { type: 'button', class: `${kind} small`, dataset: { action } , onclick: run }, label);
    clear(bulk,
      h('span', { class: 'strong', dataset: { selected: String(list.length) } }, t('models.bulk.count', { count: fmtNumber(list.length) })),
      h('span', { class: 'actions' },
        button(t('models.bulk.prices'), 'bulk-prices', () => bulkPrices(chosen()), 'primary'),
        button(t('common.activate'), 'bulk-activate', () => bulkActive(chosen(), true)),
        button(t('common.deactivate'), 'bulk-deactivate', () => bulkActive(chosen(), false)),
        button(t('models.bulk.clear'), 'bulk-clear', () => { selected.clear(); show(); })));
  }

  async function write(m, changes, done) {
    await reloadIfStale(() => update(`/api/admin/ai-models/${seg(m.id)}`, m, changes), load);
    toast(done);
    await load();
  }

  /**
   * The same change for several models, one versioned update each (a model changed meanwhile is
   * left alone and named). Then the list again and one message.
   */
  async function writeMany(list, changesOf) {
    const failed = [];
    for (const m of list) {
      try {
        await update(`/api/admin/ai-models/${seg(m.id)}`, m, changesOf(m));
      } catch (e) {
        failed.push(`${m.id}: ${e.message}`);
      }
    }
    await load();
    const saved = list.length - failed.length;
    if (failed.length) toast(t('models.bulk.partly', { saved: fmtNumber(saved), failed: failed.join(' · ') }), 'error');
    else toast(t('models.bulk.saved', { count: fmtNumber(saved) }));
  }

  async function bulkActive(list, active) {
    const changing = list.filter((m) => m.is_active !== active);
    if (!changing.length) return;
    const lines = changing.flatMap((m) => risks(m, { is_active: active }));
    if (!(await confirmRisks(lines, t('common.activate')))) return;
    await writeMany(changing, () => ({ is_active: active }));
  }

  /** The price fields of a form and the live preview under them. */
  const priceField = (name, value, optional) => ({
    name, label: t(`models.field.${name}`), value: toDollars(value), inputmode: 'decimal',
    placeholder: optional ? t('models.asInput') : '0.15', hint: optional ? t('models.asInputHint') : t('models.priceHint'),
    required: !optional,
  });
  function previewer() {
    const line = h('p', { class: 'notice notice-info price-preview', role: 'status', dataset: { preview: '' } });
    const onInput = (inputs) => {
      let input;
      let output;
      try {
        input = priceMicros(inputs.get('input_price').value, 'input_price') ?? 0;
        output = priceMicros(inputs.get('output_price').value, 'output_price') ?? 0;
      } catch (e) {
        line.className = 'notice notice-warn price-preview';
        line.textContent = e.message;
        return;
      }
      line.className = 'notice notice-info price-preview';
      line.textContent = previewText(input, output);
    };
    return { line, onInput };
  }

  function edit(m) {
    const count = (name, label, value) => ({ name, label, type: 'number', value: value ?? '', min: 1, step: 1, placeholder: t('models.unknown') });
    const preview = previewer();
    formDialog({
      title: t('models.editTitle', { id: m.id }),
      name: 'model',
      intro: t('models.editIntro'),
      fields: [
        { name: 'model_name', label: t('models.field.displayName'), value: m.model_name ?? '' },
        count('max_input_tokens', t('models.field.context'), m.max_input_tokens),
        count('max_output_tokens', t('models.field.maxOutput'), m.max_output_tokens),
        priceField('input_price', m.prices.input_price),
        priceField('output_price', m.prices.output_price),
        priceField('cached_input_price', m.prices.cached_input_price, true),
        priceField('cache_write_price', m.prices.cache_write_price, true),
        { name: 'supports_streaming', label: t('models.field.streaming'), type: 'checkbox', value: m.supports_streaming },
        { name: 'supports_function_call', label: t('models.field.tools'), type: 'checkbox', value: m.supports_function_call },
        { name: 'supports_vision', label: t('models.field.vision'), type: 'checkbox', value: m.supports_vision },
        { name: 'is_active', label: t('models.field.active'), type: 'checkbox', value: m.is_active },
        { name: 'is_default', label: t('models.field.default'), type: 'checkbox', value: m.is_default },
      ],
      after: preview.line,
      onInput: preview.onInput,
      onSubmit: async (v) => {
        const prices = {};
        for (const field of PRICE_FIELDS) prices[field] = priceMicros(v[field], field);
        const changes = {
          model_name: v.model_name,
          max_input_tokens: v.max_input_tokens,
          max_output_tokens: v.max_output_tokens,
          prices: { ...prices, input_price: prices.input_price ?? 0, output_price: prices.output_price ?? 0 },
          supports_streaming: v.supports_streaming,
          supports_function_call: v.supports_function_call,
          supports_vision: v.supports_vision,
          is_active: v.is_active,
          is_default: v.is_default,
        };
        if (!(await confirmRisks(risks(m, changes), t('common.save')))) throw new Cancelled();
        await write(m, changes, t('models.saved', { id: m.id }));
      },
    });
  }

  function bulkPrices(list) {
    if (!list.length) return;
    const preview = previewer();
    formDialog({
      title: t('models.bulk.pricesTitle', { count: fmtNumber(list.length) }),
      name: 'bulk-prices',
      intro: t('models.bulk.pricesIntro', { models: list.map((m) => m.id).join(t('common.listSeparator')) }),
      fields: [
        priceField('input_price', list.length === 1 ? list[0].prices.input_price : null),
        priceField('output_price', list.length === 1 ? list[0].prices.output_price : null),
        { name: 'is_active', label: t('models.bulk.activateToo'), type: 'checkbox', value: false },
      ],
      after: preview.line,
      onInput: preview.onInput,
      submitLabel: t('models.bulk.apply'),
      onSubmit: async (v) => {
        const input = priceMicros(v.input_price, 'input_price') ?? 0;
        const output = priceMicros(v.output_price, 'output_price') ?? 0;
        const changesOf = (m) => ({
          prices: { input_price: input, output_price: output },
          ...(v.is_active ? { is_active: true } : {}),
        });
        const lines = list.flatMap((m) => risks(m, changesOf(m)));
        if (!(await confirmRisks(lines, t('models.bulk.apply')))) throw new Cancelled();
        await writeMany(list, changesOf);
      },
    });
  }

  load();
  return null;
}
