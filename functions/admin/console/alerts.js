// Alerts: the rules (a threshold over a window, per scope), where they notify (channels:
// DingTalk, Feishu/Lark, WeCom, Slack, a webhook, e-mail), and what they said (the history).
// Rules: add, edit (with the version read: a stale one is reloaded and said so), delete. Channels:
// add, edit, send a test message, delete; their URL and secret are write-only (shown masked, left
// empty on an edit to keep them). A spend threshold is typed in dollars and sent in micro-USD.

import { api, reloadIfStale, remove, seg } from './api.js';
import {
  FieldError, badge, clear, confirmDialog, errorBox, formDialog, h, pageHeader, parseDecimal, spinner, table, toast,
} from './dom.js';
import { fmtList, fmtMoney, fmtNumber, fmtPercent, t } from './i18n.js';
import { historyTable } from './live.js';

export const KINDS = ['error_rate', 'spend', 'latency_p95', 'key_state', 'provider_down'];
export const SCOPES = ['all', 'provider', 'model', 'key', 'caller'];
export const CHANNEL_KINDS = ['dingtalk', 'feishu', 'wecom', 'slack', 'webhook', 'email'];
// Kinds whose threshold means something (the others fire on a state, not a number).
const WITH_THRESHOLD = ['error_rate', 'spend', 'latency_p95'];
const HISTORY_LIMIT = 100;

const list = (raw) => String(raw ?? '').split(/[,，\s]+/).map((s) => s.trim()).filter(Boolean);

/** A rule's threshold as people read it: "20%", "$50.00", "2,000 ms". */
function thresholdText(rule) {
  switch (rule.kind) {
    case 'error_rate': return fmtPercent(rule.threshold / 100, 0);
    case 'spend': return fmtMoney(rule.threshold);
    case 'latency_p95': return t('alerts.threshold.ms', { value: fmtNumber(rule.threshold) });
    default: return '';
  }
}

/** "> 20% over 5 min, at least 10 calls": what makes the rule fire. */
function conditionText(rule) {
  const window = t('alerts.window', { minutes: fmtNumber(rule.window_minutes) });
  switch (rule.kind) {
    case 'spend': return t('alerts.condition.spend', { value: thresholdText(rule) });
    case 'key_state': return t('alerts.condition.key_state', { window });
    case 'provider_down': return t('alerts.condition.provider_down', { window });
    default: return t('alerts.condition.over', { value: thresholdText(rule), window });
  }
}

export function render(main) {
  let data = null;
  let history = [];
  const body = h('div', { class: 'stack' }, spinner(t('alerts.loading')));
  main.append(pageHeader(t('alerts.title'), t('alerts.help'),
    h('button', { type: 'button', class: 'ghost', dataset: { action: 'add-channel' }, onclick: () => channelDialog(null) }, t('alerts.addChannel')),
    h('button', { type: 'button', class: 'primary', dataset: { action: 'add-rule' }, onclick: () => ruleDialog(null) }, t('alerts.addRule'))),
  body);

  async function load() {
    try {
      [data, history] = await Promise.all([
        api('/api/admin/ai-alerts'),
        api('/api/admin/ai-alerts/history', { query: { limit: HISTORY_LIMIT } }),
      ]);
    } catch (e) {
      clear(body, errorBox(e, load));
      return;
    }
    show();
  }

  function stateCell(rule) {
    if (!rule.enabled) return h('span', { dataset: { state: 'disabled' } }, badge(t('alerts.state.disabled'), 'off'));
    const firing = rule.instances.filter((i) => i.firing);
    if (firing.length) {
      return h('span', { dataset: { state: 'firing' } }, badge(t('alerts.state.firingCount', { count: fmtNumber(firing.length) }), 'bad'),
        h('small', { class: 'muted block mono' }, firing.map((i) => `${i.instance}: ${i.value}`).join(' · ')));
    }
    if (rule.instances.length) return h('span', { dataset: { state: 'pending' } }, badge(t('alerts.state.pending'), 'warn'));
    return h('span', { dataset: { state: 'ok' } }, badge(t('alerts.state.ok'), 'ok'));
  }

  function show() {
    const rules = table([
      { label: t('alerts.col.name'), cell: (r) => h('span', { class: 'mono strong', dataset: { field: 'name' } }, r.name) },
      { label: t('alerts.col.kind'), cell: (r) => h('span', { dataset: { kind: r.kind } }, t(`alerts.kind.${r.kind}`)) },
      { label: t('alerts.col.condition'), cell: (r) => h('span', { dataset: { field: 'condition' } }, conditionText(r)) },
      {
        label: t('alerts.col.scope'),
        cell: (r) => h('span', {}, t(`alerts.scope.${r.scope}`), r.only ? h('small', { class: 'muted block mono' }, r.only) : null),
      },
      { label: t('alerts.col.channels'), cell: (r) => h('span', { class: 'mono', dataset: { field: 'channels' } }, r.channels.length ? r.channels.join(', ') : '—') },
      { label: t('alerts.col.state'), cell: stateCell },
      {
        label: '', class: 'row-actions', cell: (r) => [
          h('button', { type: 'button', class: 'ghost small', dataset: { action: 'edit' }, onclick: () => ruleDialog(r) }, t('common.edit')),
          h('button', { type: 'button', class: 'ghost small danger-text', dataset: { action: 'delete' }, onclick: () => deleteRule(r) }, t('common.delete')),
        ],
      },
    ], data.data, { cards: true, empty: t('alerts.rulesEmpty'), rowData: (r) => ({ rule: r.name }) });

    const channels = table([
      { label: t('alerts.col.name'), cell: (c) => h('span', { class: 'mono strong' }, c.name) },
      { label: t('alerts.col.kind'), cell: (c) => t(`alerts.channel.${c.kind}`) },
      {
        label: t('alerts.col.target'), cell: (c) => h('span', { class: 'mono wrap', dataset: { field: 'target' } },
          c.kind === 'email' ? fmtList(c.to) : (c.url || '—')),
      },
      { label: t('alerts.col.secret'), cell: (c) => (c.has_secret ? badge(t('alerts.secretSet'), 'info') : '—') },
      {
        label: '', class: 'row-actions', cell: (c) => [
          h('button', { type: 'button', class: 'ghost small', dataset: { action: 'test' }, onclick: (e) => testChannel(e.currentTarget, c) }, t('alerts.test')),
          h('button', { type: 'button', class: 'ghost small', dataset: { action: 'edit' }, onclick: () => channelDialog(c) }, t('common.edit')),
          h('button', { type: 'button', class: 'ghost small danger-text', dataset: { action: 'delete' }, onclick: () => deleteChannel(c) }, t('common.delete')),
        ],
      },
    ], data.channels, { cards: true, empty: t('alerts.channelsEmpty'), rowData: (c) => ({ channel: c.name }) });

    clear(body,
      h('section', { class: 'card flush', dataset: { section: 'rules' } }, h('div', { class: 'card-head padded' }, h('h2', {}, t('alerts.rules'))), rules),
      h('section', { class: 'card flush', dataset: { section: 'channels' } }, h('div', { class: 'card-head padded' }, h('h2', {}, t('alerts.channels'))), channels),
      h('section', { class: 'card flush', dataset: { section: 'history' } }, h('div', { class: 'card-head padded' }, h('h2', {}, t('alerts.history'))), historyTable(history)));
  }

  // ---- Rules --------------------------------------------------------------------------------

  function thresholdHint(kind) {
    return WITH_THRESHOLD.includes(kind) ? t(`alerts.thresholdHint.${kind}`) : t('alerts.thresholdHint.none');
  }

  function ruleDialog(rule) {
    const kind = rule?.kind ?? 'error_rate';
    const threshold = !rule || !WITH_THRESHOLD.includes(rule.kind) ? ''
      : rule.kind === 'spend' ? String(rule.threshold / 1e6) : String(rule.threshold);
    const channelNames = data.channels.map((c) => c.name);
    formDialog({
      title: rule ? t('alerts.editRuleTitle', { name: rule.name }) : t('alerts.addRuleTitle'),
      name: 'alert-rule',
      intro: t('alerts.ruleIntro'),
      fields: [
        rule ? null : { name: 'name', label: t('alerts.field.name'), required: true, pattern: '[A-Za-z0-9_.\\-]{1,64}', hint: t('alerts.field.nameHint') },
        { name: 'kind', label: t('alerts.field.kind'), type: 'select', value: kind, options: KINDS.map((k) => [k, t(`alerts.kind.${k}`)]) },
        { name: 'threshold', label: t('alerts.field.threshold'), inputmode: 'decimal', value: threshold, hint: thresholdHint(kind) },
        { name: 'window_minutes', label: t('alerts.field.window'), type: 'number', min: 1, step: 1, value: rule?.window_minutes ?? 5, required: true },
        { name: 'min_calls', label: t('alerts.field.minCalls'), type: 'number', min: 0, step: 1, value: rule?.min_calls ?? '', hint: t('alerts.field.minCallsHint') },
        { name: 'scope', label: t('alerts.field.scope'), type: 'select', value: rule?.scope ?? 'all', options: SCOPES.map((s) => [s, t(`alerts.scope.${s}`)]) },
        { name: 'only', label: t('alerts.field.only'), value: rule?.only ?? '', hint: t('alerts.field.onlyHint') },
        {
          name: 'channels', label: t('alerts.field.channels'), value: (rule?.channels ?? channelNames.slice(0, 1)).join(', '), wide: true,
          hint: channelNames.length ? t('alerts.field.channelsHint', { names: fmtList(channelNames) }) : t('alerts.field.channelsNone'),
        },
        { name: 'repeat_minutes', label: t('alerts.field.repeat'), type: 'number', min: 0, step: 1, value: rule?.repeat_minutes ?? '', hint: t('alerts.field.repeatHint') },
        { name: 'enabled', label: t('alerts.field.enabled'), type: 'checkbox', value: rule?.enabled ?? true },
      ].filter(Boolean),
      submitLabel: rule ? t('common.save') : t('alerts.addRule'),
      conflictInside: !rule,
      onInput: (inputs) => {
        const hint = document.getElementById('f-threshold-hint');
        if (hint) hint.textContent = thresholdHint(inputs.get('kind').value);
      },
      onSubmit: async (v) => {
        const body = {
          name: rule ? rule.name : v.name,
          kind: v.kind,
          threshold: 0,
          window_minutes: v.window_minutes,
          scope: v.scope,
          channels: list(v.channels),
          enabled: v.enabled,
        };
        if (WITH_THRESHOLD.includes(v.kind)) {
          const number = parseDecimal(v.threshold);
          if (number === null || Number.isNaN(number) || number < 0) throw new FieldError('threshold', t('alerts.thresholdInvalid'));
          if (v.kind !== 'spend' && !Number.isInteger(number)) throw new FieldError('threshold', t('alerts.thresholdWhole'));
          body.threshold = v.kind === 'spend' ? Math.round(number * 1e6) : number;
        }
        if (v.min_calls !== null) body.min_calls = v.min_calls;
        if (v.only) body.only = v.only;
        if (v.repeat_minutes !== null) body.repeat_minutes = v.repeat_minutes;
        if (rule) {
          await reloadIfStale(() => api(`/api/admin/ai-alerts/${seg(rule.name)}`, { method: 'PUT', body: { ...body, version: rule.version } }), load);
          toast(t('alerts.ruleSaved', { name: rule.name }));
        } else {
          await api('/api/admin/ai-alerts', { method: 'POST', body });
          toast(t('alerts.ruleAdded', { name: body.name }));
        }
        await load();
      },
    });
  }

  function deleteRule(rule) {
    confirmDialog({
      title: t('alerts.deleteRuleTitle', { name: rule.name }),
      message: t('alerts.deleteRuleMessage'),
      confirmLabel: t('common.delete'),
      onConfirm: async () => {
        await reloadIfStale(() => remove(`/api/admin/ai-alerts/${seg(rule.name)}`, rule), load);
        toast(t('alerts.ruleDeleted', { name: rule.name }));
        await load();
      },
    });
  }

  // ---- Channels -----------------------------------------------------------------------------

  function channelDialog(channel) {
    const keep = channel ? t('alerts.field.keepHint') : null;
    formDialog({
      title: channel ? t('alerts.editChannelTitle', { name: channel.name }) : t('alerts.addChannelTitle'),
      name: 'alert-channel',
      intro: t('alerts.channelIntro'),
      fields: [
        channel ? null : { name: 'name', label: t('alerts.field.name'), required: true, pattern: '[A-Za-z0-9_.\\-]{1,64}', hint: t('alerts.field.nameHint') },
        { name: 'kind', label: t('alerts.field.channelKind'), type: 'select', value: channel?.kind ?? 'dingtalk', options: CHANNEL_KINDS.map((k) => [k, t(`alerts.channel.${k}`)]) },
        // Write-only: never prefilled (the stored URL may carry a token).
        { name: 'url', label: t('alerts.field.url'), type: 'password', wide: true, hint: keep ?? t('alerts.field.urlHint') },
        { name: 'secret', label: t('alerts.field.secret'), type: 'password', hint: keep ?? t('alerts.field.secretHint') },
        { name: 'to', label: t('alerts.field.to'), value: (channel?.to ?? []).join(', '), wide: true, hint: t('alerts.field.toHint') },
      ].filter(Boolean),
      submitLabel: channel ? t('common.save') : t('alerts.addChannel'),
      conflictInside: !channel,
      onSubmit: async (v) => {
        const name = channel ? channel.name : v.name;
        if (!channel && data.channels.some((c) => c.name === name)) throw new FieldError('name', t('alerts.channelTaken', { name }));
        const body = { kind: v.kind, to: v.kind === 'email' ? list(v.to) : [] };
        if (v.url) body.url = v.url;
        if (v.secret) body.secret = v.secret;
        if (channel) body.version = channel.version;
        await reloadIfStale(() => api(`/api/admin/ai-alert-channels/${seg(name)}`, { method: 'PUT', body }), load);
        toast(t('alerts.channelSaved', { name }));
        await load();
      },
    });
  }

  async function testChannel(button, channel) {
    button.disabled = true;
    try {
      const r = await api(`/api/admin/ai-alert-channels/${seg(channel.name)}/test`, { method: 'POST' });
      if (r.delivered) toast(t('alerts.testDelivered', { name: channel.name }));
      else toast(t('alerts.testFailed', { name: channel.name, error: r.error || '' }), 'warn');
    } catch (e) {
      toast(e.message, 'error');
    } finally {
      button.disabled = false;
    }
  }

  function deleteChannel(channel) {
    confirmDialog({
      title: t('alerts.deleteChannelTitle', { name: channel.name }),
      message: t('alerts.deleteChannelMessage'),
      confirmLabel: t('common.delete'),
      onConfirm: async () => {
        await api(`/api/admin/ai-alert-channels/${seg(channel.name)}`, { method: 'DELETE' });
        toast(t('alerts.channelDeleted', { name: channel.name }));
        await load();
      },
    });
  }

  load();
  return null;
}
