// Routes: model names callers send that Maestro resolves to targets. A route has ordered
// `provider/model` targets, a strategy that picks among them (fallback in order, weighted shares,
// cheapest, fastest; `weights` only with weighted, one per target), and ordered rules: the first
// rule whose conditions (`when`) all hold replaces the targets (and, when it says so, the strategy
// and weights). List, add, edit in a dialog, delete. A failed save (400 naming a field, 409 for a
// duplicate name or a stale version) keeps the dialog and everything typed in it.

import { api, remove, reloadIfStale, seg, update } from './api.js';
import { badge, clear, confirmDialog, errorBox, h, pageHeader, parseDecimal, spinner, table, toast } from './dom.js';
import { fmtNumber, t } from './i18n.js';

export const STRATEGIES = ['fallback', 'weighted', 'cheapest', 'fastest'];
// The two yes/no conditions: absent (any), true (yes), false (no).
const TRI = [['any', undefined], ['yes', true], ['no', false]];

/** An error of the form itself, before anything is sent: `param` as the API would name the field. */
class FieldError extends Error {
  constructor(param, message) {
    super(message);
    this.param = param;
  }
}

const strategyOf = (r) => r.strategy || 'fallback';
const strategyName = (s) => (STRATEGIES.includes(s) ? t(`routes.strategy.${s}`) : s);

export function render(main) {
  let routes = [];
  let models = [];
  const body = h('div', { class: 'stack' }, spinner(t('routes.loading')));
  main.append(pageHeader(t('routes.title'), t('routes.help'),
    h('button', { type: 'button', class: 'primary', dataset: { action: 'add-route' }, onclick: () => routeDialog(null) }, t('routes.add'))),
  body);

  async function load() {
    try {
      [routes, models] = await Promise.all([
        api('/api/admin/ai-routes').then((r) => r.data),
        api('/api/admin/ai-models').then((r) => r.data),
      ]);
    } catch (e) {
      clear(body, errorBox(e, load));
      return;
    }
    show();
  }

  const targetsCell = (list, weights, weighted) => h('ol', { class: 'target-summary' }, list.map((id, i) => h('li', {},
    h('span', { class: 'mono' }, id), weighted && weights?.length ? h('span', { class: 'muted' }, ` × ${fmtNumber(weights[i])}`) : null)));

  function show() {
    clear(body, h('section', { class: 'card flush' }, table([
      { label: t('routes.col.name'), cell: (r) => h('span', { class: 'mono strong', dataset: { field: 'name' } }, r.name) },
      {
        label: t('routes.col.strategy'),
        cell: (r) => h('span', { dataset: { strategy: strategyOf(r) } }, badge(strategyName(strategyOf(r)), 'info')),
      },
      { label: t('routes.col.targets'), cell: (r) => targetsCell(r.targets, r.weights, strategyOf(r) === 'weighted') },
      {
        label: t('routes.col.rules'), class: 'num',
        cell: (r) => h('span', { dataset: { field: 'rules' } }, fmtNumber((r.rules || []).length)),
      },
      {
        label: t('routes.col.dropParams'),
        cell: (r) => h('span', { dataset: { field: 'drop-params', value: String(r.drop_params) } }, t(r.drop_params ? 'common.yes' : 'common.no')),
      },
      {
        label: '', class: 'row-actions', cell: (r) => [
          h('button', { type: 'button', class: 'ghost small', dataset: { action: 'edit' }, onclick: () => routeDialog(r) }, t('common.edit')),
          h('button', { type: 'button', class: 'ghost small danger-text', dataset: { action: 'delete' }, onclick: () => del(r) }, t('common.delete')),
        ],
      },
    ], routes, { cards: true, empty: t('routes.empty'), rowData: (r) => ({ route: r.name }) })));
  }

  function del(r) {
    confirmDialog({
      title: t('routes.deleteTitle', { name: r.name }),
      message: t('routes.deleteMessage', { name: r.name }),
      confirmLabel: t('common.delete'),
      onConfirm: async () => {
        await reloadIfStale(() => remove(`/api/admin/ai-routes/${seg(r.name)}`, r), load);
        toast(t('routes.deleted', { name: r.name }));
        await load();
      },
    });
  }

  // ---- The editor ---------------------------------------------------------------------------

  function routeDialog(route) {
    // What the form shows, kept up to date by its inputs: the dialog is drawn again from it
    // after each change of shape (a target or rule added, moved, removed; a strategy changed).
    // Weights as typed: all empty means equal shares (the API's `[]`).
    const weightsOf = (ids, weights) => ids.map((id, i) => ({ id, weight: weights?.length ? String(weights[i]) : '' }));
    const draft = {
      name: route?.name ?? '',
      strategy: route ? strategyOf(route) : 'fallback',
      drop_params: route?.drop_params ?? false,
      targets: weightsOf(route?.targets ?? [], route?.weights),
      rules: (route?.rules ?? []).map((r) => ({
        cjk: r.when.cjk_share_at_least ?? '',
        images: TRI.find(([, v]) => v === r.when.has_images)?.[0] ?? 'any',
        tools: TRI.find(([, v]) => v === r.when.has_tools)?.[0] ?? 'any',
        tokens: r.when.prompt_tokens_over ?? '',
        tag: r.when.tag ?? '',
        user: r.when.user ?? '',
        strategy: r.strategy ?? '',
        targets: weightsOf(r.targets, r.weights),
      })),
    };
    // The version the next save is made against (a conflict moves it, once the admin has seen it).
    let version = route?.version;
    const active = models.filter((m) => m.is_active).map((m) => m.id);
    const known = new Map(models.map((m) => [m.id, m]));

    const title = route ? t('routes.editTitle', { name: route.name }) : t('routes.addTitle');
    const dialog = h('dialog', { class: 'dialog dialog-wide', 'aria-label': title, dataset: { dialog: 'route' } });
    const close = () => { if (dialog.open) dialog.close(); dialog.remove(); };
    const editor = h('div', { class: 'route-editor' });
    const error = h('p', { class: 'notice notice-error', role: 'alert', hidden: true, dataset: { error: '' } });
    const submit = h('button', { type: 'submit', class: 'primary' }, route ? t('common.save') : t('routes.add'));
    const form = h('form', { class: 'form', autocomplete: 'off', novalidate: true },
      h('header', { class: 'dialog-head' }, h('h2', {}, title),
        h('button', { type: 'button', class: 'ghost icon', 'aria-label': t('common.close'), onclick: close }, '×')),
      h('p', { class: 'muted' }, t('routes.editorIntro')),
      editor,
      h('footer', { class: 'dialog-foot dialog-foot-sticky' }, error,
        h('div', { class: 'dialog-buttons' }, h('button', { type: 'button', class: 'ghost', onclick: close }, t('common.cancel')), submit)));

    /** Draws the editor again; `focus` (a selector) gets the focus afterwards. */
    function redraw(focus) {
      const scroll = dialog.scrollTop;
      clear(editor, basics(), rulesSection());
      dialog.scrollTop = scroll;
      if (focus) editor.querySelector(focus)?.focus();
    }

    /** An input that writes its value into `target[key]` as it is typed. */
    const bind = (el, target, key, redrawOnChange = false) => {
      el.addEventListener(el.tagName === 'SELECT' || el.type === 'checkbox' ? 'change' : 'input', () => {
        target[key] = el.type === 'checkbox' ? el.checked : el.value;
        if (redrawOnChange) redraw(`#${CSS.escape(el.id)}`);
      });
      return el;
    };

    const field = (id, label, input, hint, wide = false) => h('div', { class: ['field', wide && 'field-wide'] },
      h('label', { for: id }, label), input, hint ? h('small', { class: 'muted', id: `${id}-hint` }, hint) : null);

    const strategySelect = (id, owner, inherit, param) => bind(h('select', {
      id, dataset: { param }, 'aria-describedby': `${id}-hint`,
    },
    inherit ? h('option', { value: '', selected: !owner.strategy }, t('routes.asRoute', { strategy: strategyName(draft.strategy) })) : null,
    STRATEGIES.map((s) => h('option', { value: s, selected: owner.strategy === s }, strategyName(s)))), owner, 'strategy', true);

    function basics() {
      const strategy = draft.strategy;
      return h('div', { class: 'fields' },
        route ? null : field('route-name', t('routes.field.name'), bind(h('input', {
          id: 'route-name', required: true, value: draft.name, placeholder: 'smart', pattern: '[A-Za-z0-9._:\\-]{1,64}',
          spellcheck: 'false', autocomplete: 'off', dataset: { param: 'name' }, 'aria-describedby': 'route-name-hint',
        }), draft, 'name'), t('routes.field.nameHint')),
        field('route-strategy', t('routes.field.strategy'), strategySelect('route-strategy', draft, false, 'strategy'),
          t(`routes.strategyHint.${strategy}`)),
        h('div', { class: 'field field-check' },
          bind(h('input', { id: 'route-drop_params', type: 'checkbox', checked: draft.drop_params, dataset: { param: 'drop_params' } }), draft, 'drop_params'),
          h('label', { for: 'route-drop_params' }, t('routes.field.dropParams')),
          h('small', { class: 'muted' }, t('routes.field.dropParamsHint'))),
        h('div', { class: 'field field-wide' },
          h('span', { class: 'label', id: 'route-targets-label' }, t('routes.field.targets')),
          targetsEditor(draft.targets, 'route', '', strategy === 'weighted', 'route-targets-label'),
          h('small', { class: 'muted' }, t(strategy === 'weighted' ? 'routes.targetsHintWeighted' : 'routes.targetsHint'))));
    }

    /**
     * An ordered list of targets with up/down/remove, weights when `weighted`, and a picker of
     * the active models not in it yet. `prefix` makes the ids (`route`, `rule-0`), `param` the
     * API's field names (`''`, `rules[0].`).
     */
    function targetsEditor(list, prefix, param, weighted, labelledBy) {
      const move = (i, by, focus) => {
        [list[i], list[i + by]] = [list[i + by], list[i]];
        redraw(`#${prefix}-target-${i + by}-${focus}`);
      };
      const items = list.map((target, i) => {
        const model = known.get(target.id);
        const weightId = `${prefix}-weight-${i}`;
        return h('li', { class: 'target', dataset: { target: target.id } },
          h('span', { class: 'target-index', 'aria-hidden': 'true' }, fmtNumber(i + 1)),
          h('span', { class: 'target-id', dataset: { param: `${param}targets[${i}]` }, tabindex: '-1' },
            h('span', { class: 'mono' }, target.id),
            !model ? badge(t('routes.notInCatalog'), 'bad') : model.is_active ? null : badge(t('state.inactive'), 'off')),
          weighted ? h('span', { class: 'weight' },
            h('label', { for: weightId, class: 'small' }, t('routes.weight')),
            bind(h('input', {
              id: weightId, type: 'number', min: 0, step: 1, value: String(target.weight), inputmode: 'numeric', placeholder: '1',
              dataset: { param: `${param}weights[${i}]` }, 'aria-label': t('routes.weightOf', { target: target.id }),
            }), target, 'weight')) : null,
          h('span', { class: 'item-actions' },
            h('button', {
              type: 'button', class: 'ghost icon-small', id: `${prefix}-target-${i}-up`, disabled: i === 0,
              'aria-label': t('routes.moveTargetUp', { target: target.id }), title: t('routes.moveUp'), onclick: () => move(i, -1, 'up'),
            }, '↑'),
            h('button', {
              type: 'button', class: 'ghost icon-small', id: `${prefix}-target-${i}-down`, disabled: i === list.length - 1,
              'aria-label': t('routes.moveTargetDown', { target: target.id }), title: t('routes.moveDown'), onclick: () => move(i, 1, 'down'),
            }, '↓'),
            h('button', {
              type: 'button', class: 'ghost icon-small', id: `${prefix}-target-${i}-remove`,
              'aria-label': t('routes.removeTarget', { target: target.id }), title: t('routes.remove'),
              onclick: () => {
                list.splice(i, 1);
                redraw(list.length ? `#${prefix}-target-${Math.min(i, list.length - 1)}-remove` : `#${prefix}-add-target`);
              },
            }, '×')));
      });
      const free = active.filter((id) => !list.some((target) => target.id === id));
      // Grouped by provider, in the catalog's order.
      const groups = new Map();
      for (const id of free) {
        const provider = known.get(id).provider_code;
        if (!groups.has(provider)) groups.set(provider, []);
        groups.get(provider).push(id);
      }
      const picker = h('select', { id: `${prefix}-add-target`, 'aria-label': t('routes.pickTarget'), dataset: { param: `${param}targets` } },
        h('option', { value: '' }, t(free.length ? 'routes.pickTarget' : 'routes.noMoreTargets')),
        [...groups].map(([provider, ids]) => h('optgroup', { label: provider }, ids.map((id) => h('option', { value: id }, id)))));
      const add = h('button', { type: 'button', class: 'small', dataset: { action: 'add-target' } }, t('routes.addTarget'));
      add.addEventListener('click', () => {
        if (!picker.value) {
          picker.focus();
          return;
        }
        // Equal shares stay equal; among weights typed, a newcomer starts at 1.
        list.push({ id: picker.value, weight: list.some((target) => String(target.weight).trim() !== '') ? '1' : '' });
        redraw(`#${prefix}-add-target`);
      });
      return h('div', { class: 'targets', dataset: { targets: prefix } },
        list.length ? h('ol', { class: 'target-list', 'aria-labelledby': labelledBy }, items)
          : h('p', { class: 'muted small target-none' }, t('routes.noTargets')),
        h('div', { class: 'add-row' }, picker, add));
    }

    function rulesSection() {
      return h('section', { class: 'rules', 'aria-labelledby': 'route-rules-title' },
        h('div', { class: 'section-head' },
          h('h3', { id: 'route-rules-title' }, t('routes.rules')),
          h('p', { class: 'muted small' }, t('routes.rulesHelp'))),
        draft.rules.length ? draft.rules.map(ruleCard) : h('p', { class: 'muted small' }, t('routes.noRules')),
        h('button', {
          type: 'button', class: 'small', id: 'route-add-rule', dataset: { action: 'add-rule' },
          onclick: () => {
            draft.rules.push({ cjk: '', images: 'any', tools: 'any', tokens: '', tag: '', user: '', strategy: '', targets: [] });
            redraw(`#rule-${draft.rules.length - 1}-cjk`);
          },
        }, t('routes.addRule')));
    }

    function ruleCard(rule, i) {
      const id = (name) => `rule-${i}-${name}`;
      const p = `rules[${i}].`;
      const move = (by, focus) => {
        [draft.rules[i], draft.rules[i + by]] = [draft.rules[i + by], draft.rules[i]];
        redraw(`#rule-${i + by}-${focus}`);
      };
      const text = (name, key, attrs) => bind(h('input', {
        id: id(name), type: 'text', value: String(rule[key]), spellcheck: 'false', autocomplete: 'off',
        'aria-describedby': `${id(name)}-hint`, ...attrs,
      }), rule, key);
      const tri = (name, key, param) => bind(h('select', { id: id(name), dataset: { param } },
        TRI.map(([value]) => h('option', { value, selected: rule[key] === value }, t(`routes.tri.${value}`)))), rule, key);
      const inherit = !rule.strategy;
      const effective = rule.strategy || draft.strategy;
      return h('section', { class: 'rule', dataset: { rule: String(i), param: `rules[${i}]` }, tabindex: '-1', 'aria-labelledby': id('title') },
        h('div', { class: 'rule-head' },
          h('h4', { id: id('title') }, t('routes.ruleTitle', { n: fmtNumber(i + 1) })),
          h('span', { class: 'item-actions' },
            h('button', {
              type: 'button', class: 'ghost small', id: id('up'), disabled: i === 0, 'aria-label': t('routes.moveRuleUp', { n: fmtNumber(i + 1) }),
              onclick: () => move(-1, 'up'),
            }, `↑ ${t('routes.moveUp')}`),
            h('button', {
              type: 'button', class: 'ghost small', id: id('down'), disabled: i === draft.rules.length - 1,
              'aria-label': t('routes.moveRuleDown', { n: fmtNumber(i + 1) }), onclick: () => move(1, 'down'),
            }, `↓ ${t('routes.moveDown')}`),
            h('button', {
              type: 'button', class: 'ghost small danger-text', id: id('delete'), dataset: { action: 'delete-rule' },
              'aria-label': t('routes.deleteRule', { n: fmtNumber(i + 1) }),
              onclick: () => {
                draft.rules.splice(i, 1);
                redraw(draft.rules.length ? `#rule-${Math.min(i, draft.rules.length - 1)}-delete` : '#route-add-rule');
              },
            }, t('common.delete')))),
        h('p', { class: 'muted small' }, t('routes.whenHelp')),
        h('div', { class: 'fields when', dataset: { param: `${p}when` }, tabindex: '-1' },
          field(id('cjk'), t('routes.when.cjk'), text('cjk', 'cjk', {
            inputmode: 'decimal', placeholder: '0.3', dataset: { param: `${p}when.cjk_share_at_least` },
          }), t('routes.when.cjkHint')),
          field(id('tokens'), t('routes.when.tokens'), text('tokens', 'tokens', {
            inputmode: 'numeric', placeholder: '100000', dataset: { param: `${p}when.prompt_tokens_over` },
          }), t('routes.when.tokensHint')),
          field(id('images'), t('routes.when.images'), tri('images', 'images', `${p}when.has_images`)),
          field(id('tools'), t('routes.when.tools'), tri('tools', 'tools', `${p}when.has_tools`)),
          field(id('tag'), t('routes.when.tag'), text('tag', 'tag', { placeholder: 'lyrics', dataset: { param: `${p}when.tag` } }),
            t('routes.when.tagHint')),
          field(id('user'), t('routes.when.user'), text('user', 'user', { placeholder: 'vip-*', dataset: { param: `${p}when.user` } }),
            t('routes.when.userHint'))),
        h('div', { class: 'fields' },
          field(id('strategy'), t('routes.field.ruleStrategy'), strategySelect(id('strategy'), rule, true, `${p}strategy`),
            inherit ? t('routes.ruleStrategyHint') : t(`routes.strategyHint.${effective}`)),
          h('div', { class: 'field field-wide' },
            h('span', { class: 'label', id: id('targets-label') }, t('routes.field.ruleTargets')),
            targetsEditor(rule.targets, `rule-${i}`, p, effective === 'weighted', id('targets-label')))));
    }

    // ---- Saving ----

    /** Whole weights ≥ 0, one per target; none at all (every field empty) for equal shares. */
    function weights(list, param) {
      const typed = list.map((target) => String(target.weight).trim());
      if (typed.every((w) => w === '')) return [];
      return typed.map((w, i) => {
        const n = Number(w);
        if (w === '' || !Number.isInteger(n) || n < 0) {
          throw new FieldError(`${param}weights[${i}]`, t('routes.error.weight', { target: list[i].id }));
        }
        return n;
      });
    }

    /** The rule's conditions as the API takes them; a form error for what cannot be read. */
    function when(rule, i) {
      const out = {};
      const p = `rules[${i}].when.`;
      const n = fmtNumber(i + 1);
      if (String(rule.cjk).trim() !== '') {
        const raw = String(rule.cjk).trim();
        const percent = raw.endsWith('%');
        const value = parseDecimal(percent ? raw.slice(0, -1) : raw);
        const share = percent ? value / 100 : value;
        if (Number.isNaN(share) || share < 0 || share > 1) throw new FieldError(`${p}cjk_share_at_least`, t('routes.error.cjk', { n }));
        // 0.1 + 0.2 style noise left out: a share has at most 4 decimals (0.0001 = 0.01 %).
        out.cjk_share_at_least = Math.round(share * 1e4) / 1e4;
      }
      for (const [key, name] of [['images', 'has_images'], ['tools', 'has_tools']]) {
        const value = TRI.find(([v]) => v === rule[key])?.[1];
        if (value !== undefined) out[name] = value;
      }
      if (String(rule.tokens).trim() !== '') {
        const raw = String(rule.tokens).trim().replace(/[\s,_]/g, '');
        const tokens = /^\d+$/.test(raw) ? Number(raw) : NaN;
        if (!Number.isSafeInteger(tokens)) throw new FieldError(`${p}prompt_tokens_over`, t('routes.error.tokens', { n }));
        out.prompt_tokens_over = tokens;
      }
      if (rule.tag.trim()) out.tag = rule.tag.trim();
      if (rule.user.trim()) out.user = rule.user.trim();
      if (!Object.keys(out).length) throw new FieldError(`rules[${i}].when`, t('routes.error.noCondition', { n }));
      return out;
    }

    /**
     * The whole route as the API takes it. Every field is sent, so an update replaces them all:
     * `weights: []` (equal shares, and the only weights another strategy takes), `rules: []`.
     */
    function payload() {
      return {
        targets: draft.targets.map((target) => target.id),
        drop_params: draft.drop_params,
        strategy: draft.strategy,
        weights: draft.strategy === 'weighted' ? weights(draft.targets, '') : [],
        rules: draft.rules.map((rule, i) => {
          const out = { when: when(rule, i), targets: rule.targets.map((target) => target.id) };
          if (rule.strategy) out.strategy = rule.strategy;
          // A rule's weights go with its strategy, its own or the route's.
          if ((rule.strategy || draft.strategy) === 'weighted') {
            const w = weights(rule.targets, `rules[${i}].`);
            if (w.length) out.weights = w;
          }
          return out;
        }),
      };
    }

    /** Marks the field the API (or the form) named and brings it into view. */
    function markField(param) {
      if (!param) return;
      const candidates = [...editor.querySelectorAll('[data-param]')];
      const exact = candidates.find((el) => el.dataset.param === param);
      // `rules[0].when` for `rules[0].when.tag`…; `targets` for `targets[3]`.
      const prefix = candidates.filter((el) => el.dataset.param && (param.startsWith(`${el.dataset.param}.`) || param.startsWith(`${el.dataset.param}[`)))
        .sort((a, b) => b.dataset.param.length - a.dataset.param.length)[0];
      // `weights` for `weights[0]`…: the first of them.
      const first = candidates.find((el) => el.dataset.param.startsWith(`${param}[`) || el.dataset.param.startsWith(`${param}.`));
      const el = exact || prefix || first;
      if (!el) return;
      el.setAttribute('aria-invalid', 'true');
      el.scrollIntoView({ block: 'center' });
      el.focus({ preventScroll: true });
    }

    async function save() {
      for (const el of editor.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
      error.hidden = true;
      if (!route && !editor.querySelector('#route-name').reportValidity()) return;
      let body;
      try {
        body = payload();
      } catch (e) {
        showError(e.message);
        markField(e.param);
        return;
      }
      submit.disabled = true;
      try {
        if (route) {
          await update(`/api/admin/ai-routes/${seg(route.name)}`, { version }, body);
          toast(t('routes.saved', { name: route.name }));
        } else {
          await api('/api/admin/ai-routes', { method: 'POST', body: { name: draft.name.trim(), ...body } });
          toast(t('routes.added', { name: draft.name.trim() }));
        }
        close();
        await load();
      } catch (e) {
        submit.disabled = false;
        if (e.status === 409 && route) {
          // Someone saved this route since the form was filled: say so, keep every input, and
          // let a second save replace their version knowingly.
          load();
          let latest = null;
          try {
            latest = (await api('/api/admin/ai-routes')).data.find((r) => r.name === route.name);
          } catch {
            // Unknown: the next save meets the same conflict and says so again.
          }
          if (latest) version = latest.version;
          showError(`${e.message.replace(/\.?$/, '.')} ${t(latest ? 'routes.conflict' : 'routes.conflictGone')}`);
          return;
        }
        showError(e.message);
        markField(e.param);
      }
    }

    function showError(message) {
      error.textContent = message;
      error.hidden = false;
    }

    form.addEventListener('submit', (event) => {
      event.preventDefault();
      save();
    });
    dialog.addEventListener('close', () => dialog.remove());
    dialog.append(form);
    document.body.append(dialog);
    redraw();
    dialog.showModal();
    editor.querySelector(route ? '#route-strategy' : '#route-name').focus();
  }

  load();
  return null;
}
