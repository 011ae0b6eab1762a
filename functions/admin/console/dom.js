// Small DOM helpers. Every value reaches the page as text (textContent or an attribute), never
// as HTML, so nothing from the API can inject markup. Labels come from i18n.js (`t`), and so do
// the formatters of numbers, money and dates.

import { t } from './i18n.js';

/**
 * h('a', {class: 'x', href, onclick}, 'text', child, [more]) builds an element. Attributes
 * starting with `on` are listeners; `class` may be an array; null/false children are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name === 'class') el.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (name === 'value' || name === 'checked') el[name] = value;
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// ---- Building blocks ------------------------------------------------------------------------

export const badge = (text, kind = 'neutral') => h('span', { class: `badge badge-${kind}` }, text);

const STATUS_KIND = { normal: 'ok', rate_limited: 'warn', error: 'warn', invalid: 'bad' };
/** A key's status in words; `data-status` keeps the API's value for scripts and tests. */
export function statusBadge(status) {
  const el = badge(STATUS_KIND[status] ? t(`status.${status}`) : status.replace('_', ' '), STATUS_KIND[status] || 'neutral');
  el.dataset.status = status;
  return el;
}
export function activeBadge(active) {
  const el = badge(t(active ? 'state.active' : 'state.inactive'), active ? 'ok' : 'off');
  el.dataset.active = String(Boolean(active));
  return el;
}

/**
 * A table inside its own scrolling box (so a narrow screen scrolls the table, not the page).
 * columns: [{label, cell: row => Node|string, class}]; options: {empty, onRowClick, rowLabel,
 * rowData: row => dataset, cards}. With `cards`, a phone shows each row as a card of
 * "label value" lines instead (every control in sight, nothing to scroll sideways).
 */
export function table(columns, rows, options = {}) {
  // `head`: a header cell's content when it is not the label (a select-all box).
  const head = h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.class }, c.head ?? c.label)));
  const body = h('tbody');
  if (!rows.length) {
    body.append(h('tr', {}, h('td', { colspan: columns.length, class: 'empty' }, options.empty || t('common.empty'))));
  }
  for (const row of rows) {
    const tr = h('tr', { dataset: options.rowData ? options.rowData(row) : null },
      columns.map((c) => h('td', { class: c.class, dataset: options.cards && c.label ? { label: c.label } : null }, c.cell(row))));
    if (options.onRowClick) {
      tr.classList.add('clickable');
      tr.tabIndex = 0;
      if (options.rowLabel) tr.setAttribute('aria-label', options.rowLabel(row));
      tr.addEventListener('click', () => options.onRowClick(row, tr));
      tr.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          options.onRowClick(row, tr);
        }
      });
    }
    body.append(tr);
  }
  return h('div', { class: ['table-wrap', options.cards && 'table-cards'] },
    h('table', { class: options.class }, h('thead', {}, head), body));
}

export const spinner = (text = t('common.loading')) => h('div', { class: 'loading', role: 'status' }, h('span', { class: 'spin' }), text);

/** An error box with the API's message and, when given, a retry button. */
export function errorBox(error, retry) {
  return h('div', { class: 'notice notice-error', role: 'alert' },
    h('span', {}, error.message || String(error)),
    retry ? h('button', { type: 'button', class: 'ghost small', onclick: retry }, t('common.retry')) : null);
}

export const notice = (kind, ...children) => h('div', { class: `notice notice-${kind}`, role: 'status' }, children);

let toastTimer = null;
/** A short message at the bottom of the screen. */
export function toast(message, kind = 'ok') {
  const el = document.getElementById('toast');
  el.className = `toast toast-${kind}`;
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 5000);
}

/** A page header: title, a line of help, actions on the right. */
export const pageHeader = (title, help, ...actions) => h('div', { class: 'page-header' },
  h('div', {}, h('h1', {}, title), help ? h('p', { class: 'muted' }, help) : null),
  h('div', { class: 'actions' }, actions));

// ---- Form dialogs ---------------------------------------------------------------------------

/** The value of a field as the API wants it: numbers parsed, empty optional fields null. */
function fieldValue(field, input) {
  if (field.type === 'checkbox') return input.checked;
  const raw = input.value.trim();
  if (raw === '') return null;
  if (field.type === 'number') return Number(raw);
  return raw;
}

function fieldInput(field, id) {
  const common = { id, name: field.name, required: field.required, placeholder: field.placeholder };
  switch (field.type) {
    case 'select':
      return h('select', common, field.options.map(([value, label]) =>
        h('option', { value, selected: value === field.value }, label)));
    case 'checkbox':
      return h('input', { ...common, type: 'checkbox', checked: Boolean(field.value) });
    case 'textarea':
      return h('textarea', { ...common, rows: field.rows || 3, spellcheck: 'false', value: field.value ?? '' });
    case 'password':
      // Write-only: never prefilled, never remembered by the browser.
      return h('input', { ...common, type: 'password', autocomplete: 'new-password', spellcheck: 'false' });
    default:
      return h('input', {
        ...common, type: field.type || 'text', value: field.value ?? '', step: field.step, min: field.min,
        pattern: field.pattern, inputmode: field.inputmode, autocomplete: 'off', spellcheck: 'false',
      });
  }
}

/** Thrown by a form's `onSubmit` when the admin said no to a confirmation: the form stays as it is. */
export class Cancelled extends Error {
  constructor() {
    super('cancelled');
  }
}

/** An error about one field of a form (`param`: the field's name), said inside the form. */
export class FieldError extends Error {
  constructor(param, message) {
    super(message);
    this.param = param;
  }
}

/**
 * A modal form. `onSubmit(values)` saves; on success the dialog closes and is removed (with any
 * secret typed into it); on failure the API's message shows inside and the dialog stays open,
 * the field it names (`param`) marked. A 409 closes it with a toast (a stale version: the caller
 * has reloaded) unless `conflictInside` (a 409 that is not about a version, e.g. a duplicate: the
 * input is still good). `after` (a node) follows the fields; `onInput(inputs)` runs at the start
 * and after each change of a field (a live preview).
 */
export function formDialog({
  title, intro, fields, submitLabel = t('common.save'), onSubmit, conflictInside = false, after = null, onInput = null, name = null,
}) {
  const inputs = new Map();
  const error = h('p', { class: 'notice notice-error', role: 'alert', hidden: true, dataset: { error: '' } });
  const rows = fields.map((field) => {
    const id = `f-${field.name}`;
    const input = fieldInput(field, id);
    inputs.set(field.name, input);
    const label = h('label', { for: id }, field.label);
    const hint = field.hint ? h('small', { class: 'muted', id: `${id}-hint` }, field.hint) : null;
    if (hint) input.setAttribute('aria-describedby', hint.id);
    return field.type === 'checkbox'
      ? h('div', { class: 'field field-check' }, input, label, hint)
      : h('div', { class: ['field', field.wide && 'field-wide'] }, label, input, hint);
  });
  const submit = h('button', { type: 'submit', class: 'primary' }, submitLabel);
  const dialog = h('dialog', { class: 'dialog', 'aria-label': title, dataset: name ? { dialog: name } : null });
  const close = () => { if (dialog.open) dialog.close(); dialog.remove(); };
  const form = h('form', { class: 'form', autocomplete: 'off' },
    h('header', { class: 'dialog-head' }, h('h2', {}, title),
      h('button', { type: 'button', class: 'ghost icon', 'aria-label': t('common.close'), onclick: close }, '×')),
    intro ? h('p', { class: 'muted' }, intro) : null,
    h('div', { class: 'fields' }, rows), after, error,
    h('footer', { class: 'dialog-foot' },
      h('button', { type: 'button', class: 'ghost', onclick: close }, t('common.cancel')), submit));
  if (onInput) {
    form.addEventListener('input', () => onInput(inputs));
    form.addEventListener('change', () => onInput(inputs));
  }
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    for (const input of inputs.values()) input.removeAttribute('aria-invalid');
    if (!form.reportValidity()) return;
    const values = {};
    for (const field of fields) values[field.name] = fieldValue(field, inputs.get(field.name));
    submit.disabled = true;
    error.hidden = true;
    try {
      await onSubmit(values);
      close();
    } catch (e) {
      submit.disabled = false;
      if (e instanceof Cancelled) return;
      // A stale version: what the form was filled from is gone; the caller has reloaded.
      if (e.status === 409 && !conflictInside) {
        close();
        toast(e.message, 'warn');
        return;
      }
      error.textContent = e.message;
      error.hidden = false;
      const field = e.param ? inputs.get(e.param) : null;
      if (field) {
        field.setAttribute('aria-invalid', 'true');
        field.focus();
      }
    }
  });
  dialog.addEventListener('close', () => dialog.remove());
  dialog.append(form);
  document.body.append(dialog);
  dialog.showModal();
  if (onInput) onInput(inputs);
  const first = form.querySelector('input:not([type=checkbox]), select, textarea');
  if (first) first.focus();
  return dialog;
}

/** A dialog's frame: title, close button, `content`, and a footer; removed from the page when closed. */
export function modal({ title, name, content, footer, wide = false }) {
  const dialog = h('dialog', { class: ['dialog', wide && 'dialog-wide'], 'aria-label': title, dataset: name ? { dialog: name } : null });
  const close = () => { if (dialog.open) dialog.close(); dialog.remove(); };
  dialog.append(h('div', { class: 'form' },
    h('header', { class: 'dialog-head' }, h('h2', {}, title),
      h('button', { type: 'button', class: 'ghost icon', 'aria-label': t('common.close'), onclick: close }, '×')),
    content, h('footer', { class: 'dialog-foot' }, footer(close))));
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, close };
}

/**
 * Asks before an action that cannot be undone. `onConfirm()` runs it: on success the dialog
 * closes; on failure the API's message shows inside and the dialog stays open (a 409 too: the
 * caller has reloaded, and the message says so).
 */
export function confirmDialog({ title, message, confirmLabel, onConfirm }) {
  const error = h('p', { class: 'notice notice-error', role: 'alert', hidden: true });
  let confirm;
  const { dialog, close } = modal({
    title, name: 'confirm',
    content: [h('p', {}, message), error],
    footer: (close) => [
      h('button', { type: 'button', class: 'ghost', onclick: close }, t('common.cancel')),
      (confirm = h('button', { type: 'button', class: 'danger', dataset: { action: 'confirm' } }, confirmLabel)),
    ],
  });
  confirm.addEventListener('click', async () => {
    confirm.disabled = true;
    error.hidden = true;
    try {
      await onConfirm();
      close();
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
      confirm.disabled = false;
    }
  });
  // The safe choice has the focus: Enter alone does not destroy anything.
  dialog.querySelector('.dialog-foot button.ghost').focus();
  return dialog;
}

/**
 * Asks before going on: resolves true when the admin confirms, false when they cancel or close.
 * `items`: lines listed under the message (what is about to happen).
 */
export function ask({ title, message, items = [], confirmLabel, danger = false }) {
  return new Promise((resolve) => {
    let answered = false;
    const answer = (yes, close) => {
      answered = true;
      close();
      resolve(yes);
    };
    const { dialog } = modal({
      title, name: 'ask',
      content: [h('p', {}, message), items.length ? h('ul', { class: 'ask-items' }, items.map((item) => h('li', {}, item))) : null],
      footer: (close) => [
        h('button', { type: 'button', class: 'ghost', onclick: () => answer(false, close) }, t('common.cancel')),
        h('button', { type: 'button', class: danger ? 'danger' : 'primary', dataset: { action: 'confirm' }, onclick: () => answer(true, close) }, confirmLabel),
      ],
    });
    dialog.addEventListener('close', () => { if (!answered) resolve(false); });
    dialog.querySelector('.dialog-foot button.ghost').focus();
  });
}

/**
 * A decimal typed by a person: `0.3`, `0,3` (a comma as the decimal sign), ` .5 `. Thousands
 * separators are not taken (`1,000` is 1). NaN when it is not a number; null when empty.
 */
export function parseDecimal(raw) {
  const text = String(raw ?? '').trim().replace(/\s+/g, '');
  if (text === '') return null;
  const dotted = text.replace(',', '.');
  return /^\d*\.?\d+$|^\d+\.$/.test(dotted) ? Number(dotted) : NaN;
}
