// The console's languages: English and Simplified Chinese. Every label the console writes itself
// is a message id looked up here (`t`); what the API says (error messages, names, codes) is shown
// as it comes. Numbers, money and dates go through `Intl` in the current locale.
//
// The locale: `maestro.lang` in localStorage (the switch writes it), else the browser's language
// (`zh…` → zh-CN), else English. `setLocale` stores a new choice and tells the listeners (app.js
// re-renders the page in place). Nothing here touches the page at import time, so the tests can
// import the dictionaries in Node as well.

export const LOCALES = [['en', 'English'], ['zh-CN', '简体中文']];
export const STORAGE_KEY = 'maestro.lang';

export const messages = {
  en: {
    'app.title': 'Maestro admin',
    'app.viewTitle': '{view} · Maestro admin',
    'lang.label': 'Language',

    'signin.tokenLabel': 'Admin token',
    'signin.tokenPlaceholder': 'Paste a token whose scope holds maestro:admin',
    'signin.submit': 'Sign in',
    'signin.help': 'Running locally? Open the {link} link that {command} prints: it signs you in with the local admin token. The token stays in this tab only.',
    'signin.notAdmin': 'This token is not an admin token: {message}',
    'signin.again': 'Sign in again: {message}',
    'nav.label': 'Sections',
    'nav.dashboard': 'Dashboard',
    'nav.providers': 'Providers',
    'nav.models': 'Models',
    'nav.routes': 'Routes',
    'nav.apikeys': 'API keys',
    'nav.logs': 'Logs',
    'nav.signout': 'Sign out',

    'api.unreachable': 'Maestro did not answer ({message}).',
    'api.stale': 'The page now shows the latest version.',

    'common.loading': 'Loading…',
    'common.empty': 'Nothing here yet.',
    'common.retry': 'Retry',
    'common.close': 'Close',
    'common.cancel': 'Cancel',
    'common.save': 'Save',
    'common.edit': 'Edit',
    'common.delete': 'Delete',
    'common.activate': 'Activate',
    'common.deactivate': 'Deactivate',
    'common.any': 'any',
    'common.none': 'none',
    'common.never': 'never',
    'common.yes': 'yes',
    'common.no': 'no',
    'common.listSeparator': ', ',
    'common.namesSuffix': ': {names}',

    'status.normal': 'normal',
    'status.rate_limited': 'rate limited',
    'status.error': 'error',
    'status.invalid': 'invalid',
    'state.active': 'active',
    'state.inactive': 'inactive',
    'outcome.success': 'success',
    'outcome.error': 'error',

    'fmt.micros': '{value} micro-USD',
    'fmt.atMost': '≤ {value}',

    'limit.rpm': '{value} rpm',
    'limit.tpm': '{value} tpm',
    'limit.rpd': '{value} rpd',
    'limitName.rpm': 'Requests per minute',
    'limitName.tpm': 'Tokens per minute',
    'limitName.rpd': 'Requests per day',

    'dashboard.title': 'Dashboard',
    'dashboard.help': 'Usage, cost and latency; days are UTC days.',
    'dashboard.refresh': 'Refresh',
    'dashboard.loading': 'Loading the dashboard…',
    'dashboard.updated': 'Updated {time} UTC',
    'dashboard.period.last_7_days': '7 days',
    'dashboard.period.last_30_days': '30 days',
    'dashboard.figures': 'Figures',
    'dashboard.todayUtc': 'Today (UTC)',
    'dashboard.todayNote': 'today · {note}',
    'dashboard.kpi.requests': 'Requests',
    'dashboard.kpi.requestsNote': '{count} failed',
    'dashboard.kpi.success_rate': 'Success rate',
    'dashboard.kpi.success_rateNote': '{count} succeeded',
    'dashboard.kpi.tokens': 'Tokens',
    'dashboard.kpi.tokensNote': '{input} in · {output} out',
    'dashboard.kpi.cost': 'Cost',
    'dashboard.kpi.p50': 'Latency p50',
    'dashboard.kpi.p50Note': 'avg {value}',
    'dashboard.kpi.p95': 'Latency p95',
    'dashboard.kpi.p95Note': 'histogram bucket bound',
    'dashboard.kpi.p99': 'Latency p99',
    'dashboard.kpi.p99Note': 'histogram bucket bound',
    'dashboard.kpi.cache': 'Cache hits',
    'dashboard.kpi.cacheNote': '{rate} of calls · saved {saved}',
    'dashboard.trendRange': 'Trend range',
    'dashboard.days': '{count} days',
    'dashboard.trendLoading': 'Loading the trend…',
    'dashboard.trendTitle': 'Daily requests and cost by provider',
    'dashboard.trendEmpty': 'No calls in this period yet.',
    'dashboard.requestsPerDay': 'Requests per day',
    'dashboard.costPerDay': 'Cost per day',
    'dashboard.chartDay': 'Day',
    'dashboard.chartAll': 'all',
    'dashboard.topModels': 'Top models',
    'dashboard.last7Days': 'last 7 days',
    'dashboard.col.model': 'Model',
    'dashboard.col.requests': 'Requests',
    'dashboard.col.failed': 'Failed',
    'dashboard.col.tokens': 'Tokens',
    'dashboard.col.cost': 'Cost',
    'dashboard.topEmpty': 'No calls in the last 7 days.',
    'dashboard.nearLimits': 'Keys near their limits',
    'dashboard.col.key': 'Key',
    'dashboard.col.limit': 'Limit',
    'dashboard.col.used': 'Used',
    'dashboard.nearEmpty': 'No key is at 80 % of a limit.',
    'dashboard.notNormal': 'Keys not normal',
    'dashboard.col.status': 'Status',
    'dashboard.col.active': 'Active',
    'dashboard.col.cooldown': 'Cool-down',
    'dashboard.notNormalEmpty': 'Every key is normal.',
    'dashboard.untilValidated': 'until validated',
    'dashboard.cooldownEnded': 'ended {when}',
    'dashboard.cooldownUntil': 'until {time} UTC ({when})',

    'providers.title': 'Providers and keys',
    'providers.help': 'Keys are stored in the secret store and only ever shown masked.',
    'providers.add': 'Add provider',
    'providers.loading': 'Loading providers…',
    'providers.empty': 'No provider yet.',
    'providers.syncModels': 'Sync models',
    'providers.addKey': 'Add key',
    'providers.activated': 'Provider {code} activated.',
    'providers.deactivated': 'Provider {code} deactivated.',
    'providers.saved': 'Provider {code} saved.',
    'providers.added': 'Provider {code} added.',
    'providers.meta.baseUrl': 'Base URL',
    'providers.meta.models': 'Models',
    'providers.meta.modelsValue': '{active} active of {total}',
    'providers.meta.sortOrder': 'Sort order',
    'providers.meta.headers': 'Headers',
    'providers.meta.about': 'About',
    'providers.col.key': 'Key',
    'providers.col.secret': 'Secret',
    'providers.col.state': 'State',
    'providers.col.priority': 'Priority',
    'providers.col.limits': 'Limits',
    'providers.col.today': 'Today',
    'providers.col.lastUsed': 'Last used',
    'providers.today': '{requests} req · {tokens} tok',
    'providers.validate': 'Validate',
    'providers.keysEmpty': 'No key yet: add one to use this provider.',
    'providers.keyActivated': 'Key {name} activated.',
    'providers.keyDeactivated': 'Key {name} deactivated.',
    'providers.keySaved': 'Key {name} saved.',
    'providers.keyAdded': 'Key {name} added.',
    'providers.validating': 'Validating {name}…',
    'providers.validation': 'Validation: ',
    'providers.http': ' (HTTP {status})',
    'providers.noMessage': 'no message',
    'providers.valid': 'Key {name} is valid: the provider listed {count} models. Its status is normal.',
    'providers.invalid': 'Key {name} was refused{http}: {message}. Its status is now invalid.',
    'providers.rateLimited': 'Key {name} is limited right now{http}: {message} Its status is unchanged.',
    'providers.unreachable': 'The provider could not be reached{http}: {message} Nothing is known about the key.',
    'providers.syncing': 'Reading the provider’s models…',
    'providers.sync': 'Sync: ',
    'providers.syncListed': 'the provider listed {count} models. ',
    'providers.syncAdded': 'Added {count}{names}',
    'providers.syncAddedNote': ' (inactive and unpriced: price and activate them under Models). ',
    'providers.syncNoneAdded': '. ',
    'providers.syncRest': 'Already in the catalog: {existing}. In the catalog but not listed: {missing}{names}.',
    'providers.editTitle': 'Edit {name}',
    'providers.addTitle': 'Add a provider',
    'providers.editIntro': 'Masked header values sent back keep the stored ones.',
    'providers.field.code': 'Code',
    'providers.field.codeHint': 'a-z, 0-9, _ and -; used in model names (code/model)',
    'providers.field.name': 'Name',
    'providers.field.kind': 'Kind',
    'providers.field.baseUrl': 'Base URL',
    'providers.field.baseUrlHint': 'Required for {kinds}; the others have a default',
    'providers.field.sortOrder': 'Sort order',
    'providers.field.description': 'Description',
    'providers.field.headers': 'Extra headers',
    'providers.field.headersHint': 'One "Name: value" per line',
    'providers.field.active': 'Active',
    'providers.headerLine': 'Each header line is "Name: value"; "{line}" is not.',
    'keys.editTitle': 'Edit key {name}',
    'keys.addTitle': 'Add a key to {provider}',
    'keys.editIntro': 'Current secret: {masked}. It is never shown in full.',
    'keys.addIntro': 'The secret is stored in the secret store and shown masked from now on.',
    'keys.field.name': 'Name',
    'keys.field.newSecret': 'New secret (rotates the key)',
    'keys.field.secret': 'Secret',
    'keys.field.keepSecret': 'leave empty to keep the current one',
    'keys.field.priority': 'Priority',
    'keys.field.priorityHint': 'Higher first',
    'keys.field.noLimit': 'no limit',
    'keys.field.active': 'Active',

    'models.title': 'Models',
    'models.help': 'Synced models arrive inactive, priced only where Maestro ships a price: check the prices, then activate them.',
    'models.loading': 'Loading models…',
    'models.filterProvider': 'Provider',
    'models.filterState': 'State',
    'models.everyProvider': 'Every provider',
    'models.anyState': 'Active and inactive',
    'models.active': 'Active',
    'models.inactive': 'Inactive',
    'models.search': 'Search models',
    'models.col.model': 'Model',
    'models.col.tokens': 'Tokens in / out',
    'models.col.prices': '$ per 1M in / out',
    'models.col.supports': 'Supports',
    'models.col.state': 'State',
    'models.out': 'out {count}',
    'models.cached': 'cached {price}',
    'models.stream': 'stream',
    'models.tools': 'tools',
    'models.vision': 'vision',
    'models.default': 'default',
    'models.empty': 'No model matches.',
    'models.activated': '{id} activated.',
    'models.deactivated': '{id} deactivated.',
    'models.saved': '{id} saved.',
    'models.editTitle': 'Edit {id}',
    'models.editIntro': 'Prices are US dollars per million tokens.',
    'models.asInput': 'as input',
    'models.asInputHint': 'Empty: billed as input',
    'models.unknown': 'unknown',
    'models.field.displayName': 'Display name',
    'models.field.context': 'Context (input tokens)',
    'models.field.maxOutput': 'Max output tokens',
    'models.field.inputPrice': 'Input $/1M',
    'models.field.outputPrice': 'Output $/1M',
    'models.field.cachedPrice': 'Cached input $/1M',
    'models.field.cacheWritePrice': 'Cache write $/1M',
    'models.field.streaming': 'Streaming',
    'models.field.tools': 'Tools',
    'models.field.vision': 'Vision',
    'models.field.active': 'Active',
    'models.field.default': 'Default for its name',

    'routes.title': 'Routes',
    'routes.help': 'A route is a model name callers send: Maestro picks among its targets by its strategy, and the first rule whose conditions hold brings targets of its own.',
    'routes.add': 'Add route',
    'routes.loading': 'Loading routes…',
    'routes.empty': 'No route yet.',
    'routes.col.name': 'Name',
    'routes.col.strategy': 'Strategy',
    'routes.col.targets': 'Targets, in order',
    'routes.col.rules': 'Rules',
    'routes.col.dropParams': 'Drops parameters',
    'routes.strategy.fallback': 'fallback',
    'routes.strategy.weighted': 'weighted',
    'routes.strategy.cheapest': 'cheapest',
    'routes.strategy.fastest': 'fastest',
    'routes.strategyHint.fallback': 'The targets in their order: the next one when a target fails.',
    'routes.strategyHint.weighted': 'Targets drawn at random in proportion to their weights (3 and 1: the first three times in four); the others follow when one fails.',
    'routes.strategyHint.cheapest': 'The target with the lowest expected cost first, by the catalog’s prices; the next cheapest when it fails.',
    'routes.strategyHint.fastest': 'The fastest target first, by its recent latency (time to first byte for streams); the next fastest when it fails.',
    'routes.addTitle': 'Add a route',
    'routes.editTitle': 'Edit route {name}',
    'routes.editorIntro': 'Callers send the route’s name as their model. Targets come from the active models.',
    'routes.field.name': 'Name',
    'routes.field.nameHint': 'What callers send as model: 1–64 of A-Z a-z 0-9 . _ : - (it cannot change later)',
    'routes.field.strategy': 'Strategy',
    'routes.field.dropParams': 'Drop parameters a target cannot honour',
    'routes.field.dropParamsHint': 'n > 1, logprobs…: left out instead of refused',
    'routes.field.targets': 'Targets',
    'routes.targetsHint': 'In order: the first is tried first.',
    'routes.targetsHintWeighted': 'Weights are whole numbers ≥ 0, one per target, at least one above 0; leave them all empty for equal shares.',
    'routes.field.ruleStrategy': 'Strategy of this rule',
    'routes.field.ruleTargets': 'Targets of this rule',
    'routes.ruleStrategyHint': 'The route’s strategy, applied to this rule’s targets.',
    'routes.asRoute': 'As the route ({strategy})',
    'routes.weight': 'Weight',
    'routes.weightOf': 'Weight of {target}',
    'routes.moveUp': 'Up',
    'routes.moveDown': 'Down',
    'routes.remove': 'Remove',
    'routes.moveTargetUp': 'Move {target} up',
    'routes.moveTargetDown': 'Move {target} down',
    'routes.removeTarget': 'Remove {target}',
    'routes.pickTarget': 'Choose an active model…',
    'routes.noMoreTargets': 'Every active model is listed',
    'routes.addTarget': 'Add target',
    'routes.noTargets': 'No target yet: choose one below.',
    'routes.notInCatalog': 'not in the catalog',
    'routes.rules': 'Rules',
    'routes.rulesHelp': 'Checked in order; the first whose conditions all hold decides. When none does, the route’s own targets serve.',
    'routes.noRules': 'No rule: every call goes to the route’s targets.',
    'routes.addRule': 'Add rule',
    'routes.ruleTitle': 'Rule {n}',
    'routes.moveRuleUp': 'Move rule {n} up',
    'routes.moveRuleDown': 'Move rule {n} down',
    'routes.deleteRule': 'Delete rule {n}',
    'routes.whenHelp': 'Every condition filled in must hold; empty fields and “any” are ignored. Fill in at least one.',
    'routes.when.cjk': 'CJK share at least',
    'routes.when.cjkHint': 'A decimal from 0 to 1 (0.3, or 0,3, is 30 %), or a percentage with % (30 %): the share of the prompt’s letters that are Chinese, Japanese or Korean.',
    'routes.when.tokens': 'Prompt tokens over',
    'routes.when.tokensHint': 'A whole number: the prompt’s estimated tokens (o200k) must be above it.',
    'routes.when.images': 'Has images',
    'routes.when.tools': 'Has tools',
    'routes.tri.any': 'any',
    'routes.tri.yes': 'yes',
    'routes.tri.no': 'no',
    'routes.when.tag': 'Tag',
    'routes.when.tagHint': 'One of the tags the caller sends in the x-maestro-tags header (comma-separated), exactly.',
    'routes.when.user': 'User',
    'routes.when.userHint': 'The caller’s user id; * stands for any characters (vip-*).',
    'routes.error.weight': 'The weight of {target} must be a whole number, 0 or more (or leave every weight empty for equal shares).',
    'routes.error.cjk': 'Rule {n}: the CJK share is a decimal from 0 to 1 (0.3) or a percentage (30 %).',
    'routes.error.tokens': 'Rule {n}: prompt tokens over is a whole number, 0 or more.',
    'routes.error.noCondition': 'Rule {n} has no condition: fill in at least one, or delete the rule.',
    'routes.conflict': 'Your changes are still here: save again to replace that version with yours, or cancel to see it.',
    'routes.conflictGone': 'The route is gone: cancel to see the list.',
    'routes.saved': 'Route {name} saved.',
    'routes.added': 'Route {name} added.',
    'routes.deleteTitle': 'Delete route {name}?',
    'routes.deleteMessage': 'Callers that send “{name}” as their model get an error from then on. This cannot be undone.',
    'routes.deleted': 'Route {name} deleted.',

    'apiKeys.title': 'Maestro API keys',
    'apiKeys.help': 'Keys (mk-…) that callers send instead of a token; each acts as its owner, within its models and limits. Maestro keeps only a hash: a key is shown in full once, when it is created.',
    'apiKeys.create': 'Create key',
    'apiKeys.loading': 'Loading API keys…',
    'apiKeys.filterState': 'State',
    'apiKeys.onlyActive': 'Active',
    'apiKeys.onlyRevoked': 'Revoked',
    'apiKeys.activeAndRevoked': 'Active and revoked',
    'apiKeys.search': 'Search owner, name or model',
    'apiKeys.empty': 'No API key yet.',
    'apiKeys.noMatch': 'No API key matches.',
    'apiKeys.col.name': 'Name',
    'apiKeys.col.key': 'Key',
    'apiKeys.col.owner': 'Owner (user)',
    'apiKeys.col.models': 'Allowed models',
    'apiKeys.col.limits': 'Limits',
    'apiKeys.col.state': 'State',
    'apiKeys.col.dates': 'Created (UTC)',
    'apiKeys.everyModel': 'every model',
    'apiKeys.limit.tokens': '{value} tokens/day',
    'apiKeys.limit.cost': '{value}/day',
    'apiKeys.active': 'active',
    'apiKeys.revoked': 'revoked',
    'apiKeys.revokedAt': 'revoked {time}',
    'apiKeys.revoke': 'Revoke',
    'apiKeys.revokeTitle': 'Revoke key {name}?',
    'apiKeys.revokeMessage': 'Calls with {masked} (owner {owner}) are refused from then on (within 30 seconds everywhere). A revoked key cannot be restored.',
    'apiKeys.revokedToast': 'Key {name} revoked.',
    'apiKeys.createTitle': 'Create a Maestro API key',
    'apiKeys.createIntro': 'The key is shown once, right after it is created. Its owner, models and limits cannot change later: revoke it and create another.',
    'apiKeys.field.owner': 'Owner (user id)',
    'apiKeys.field.ownerHint': 'The key acts as this user: their id is in every log of its calls',
    'apiKeys.field.name': 'Name',
    'apiKeys.field.nameHint': 'To tell the owner’s keys apart (ci, backend-prod)',
    'apiKeys.field.models': 'Allowed models',
    'apiKeys.field.modelsHint': 'provider/model, model or route names, separated by spaces, commas or lines; empty: every model',
    'apiKeys.field.tokens': 'Tokens per day',
    'apiKeys.field.cost': 'Cost per day (US$)',
    'apiKeys.field.costHint': 'In dollars, e.g. 5 or 0.50 (a comma works too); UTC days',
    'apiKeys.error.whole': '{field} must be a whole number, 1 or more.',
    'apiKeys.error.cost': 'The cost per day is an amount in dollars above 0, e.g. 5 or 0.50.',
    'apiKeys.onceTitle': 'The new key {name}',
    'apiKeys.onceWarning': 'Copy this key now: it will not be shown again. Maestro keeps only its hash; if it is lost, revoke it and create another.',
    'apiKeys.onceLabel': 'Key for {owner}',
    'apiKeys.onceNext': 'From now on the list shows it as {masked}.',
    'apiKeys.copy': 'Copy',
    'apiKeys.copied': 'Copied to the clipboard.',
    'apiKeys.copyByHand': 'The browser refused the clipboard: the key is selected, press Ctrl+C (⌘C).',
    'apiKeys.onceDone': 'I have copied it',

    'logs.title': 'Logs',
    'logs.help': 'Every call, newest first. No prompt or answer text is recorded.',
    'logs.filters': 'Filters',
    'logs.filter.from': 'From',
    'logs.filter.to': 'To',
    'logs.filter.provider': 'Provider',
    'logs.filter.model': 'Model',
    'logs.filter.modelPlaceholder': 'e.g. gpt-4o',
    'logs.filter.status': 'Status',
    'logs.filter.user': 'User',
    'logs.filter.userPlaceholder': 'user id',
    'logs.filter.route': 'Route',
    'logs.filter.requestId': 'Request id',
    'logs.perPage': 'Per page',
    'logs.apply': 'Apply',
    'logs.reset': 'Reset',
    'logs.loading': 'Loading logs…',
    'logs.newer': '← Newer',
    'logs.older': 'Older →',
    'logs.col.time': 'Time (UTC)',
    'logs.col.status': 'Status',
    'logs.col.model': 'Model',
    'logs.col.user': 'User',
    'logs.col.tokens': 'Tokens in / out',
    'logs.col.cost': 'Cost',
    'logs.col.latency': 'Latency',
    'logs.col.tries': 'Tries',
    'logs.empty': 'No call matches these filters.',
    'logs.rowLabel': 'Details of {id}',
    'logs.pages': 'Pages',
    'logs.page': 'Page {page} · {count} calls',
    'logs.details': 'Call details',
    'logs.detailsNote': 'Maestro keeps no prompt or answer text and no key secret in its logs.',
    'logs.detail.requestId': 'Request id',
    'logs.detail.time': 'Time (UTC)',
    'logs.detail.user': 'User',
    'logs.detail.provider': 'Provider',
    'logs.detail.model': 'Model',
    'logs.detail.key': 'Key',
    'logs.detail.route': 'Route',
    'logs.detail.routeRule': 'Route rule',
    'logs.detail.type': 'Type',
    'logs.detail.stream': 'Stream',
    'logs.detail.status': 'Status',
    'logs.detail.statusValue': '{status} (HTTP {code})',
    'logs.detail.errorCode': 'Error code',
    'logs.detail.errorMessage': 'Error message',
    'logs.detail.promptTokens': 'Prompt tokens',
    'logs.detail.cachedTokens': 'Cached tokens',
    'logs.detail.completionTokens': 'Completion tokens',
    'logs.detail.cost': 'Cost',
    'logs.detail.costValue': '{money} ({micros})',
    'logs.detail.latency': 'Latency',
    'logs.detail.ttfb': 'Time to first byte',
    'logs.detail.attempts': 'Attempts',
  },

  'zh-CN': {
    'app.title': 'Maestro 管理控制台',
    'app.viewTitle': '{view} · Maestro 管理控制台',
    'lang.label': '语言',

    'signin.tokenLabel': '管理员令牌',
    'signin.tokenPlaceholder': '粘贴一个权限范围包含 maestro:admin 的令牌',
    'signin.submit': '登录',
    'signin.help': '在本机运行？打开 {command} 输出的 {link} 链接，即可用本地管理员令牌登录。令牌只保存在当前标签页中。',
    'signin.notAdmin': '该令牌不是管理员令牌：{message}',
    'signin.again': '请重新登录：{message}',
    'nav.label': '主导航',
    'nav.dashboard': '仪表盘',
    'nav.providers': '供应商',
    'nav.models': '模型',
    'nav.routes': '路由',
    'nav.apikeys': 'API 密钥',
    'nav.logs': '调用日志',
    'nav.signout': '退出登录',

    'api.unreachable': 'Maestro 没有响应（{message}）。',
    'api.stale': '页面已刷新为最新版本。',

    'common.loading': '加载中…',
    'common.empty': '暂无数据。',
    'common.retry': '重试',
    'common.close': '关闭',
    'common.cancel': '取消',
    'common.save': '保存',
    'common.edit': '编辑',
    'common.delete': '删除',
    'common.activate': '启用',
    'common.deactivate': '停用',
    'common.any': '全部',
    'common.none': '无',
    'common.never': '从未使用',
    'common.yes': '是',
    'common.no': '否',
    'common.listSeparator': '、',
    'common.namesSuffix': '：{names}',

    'status.normal': '正常',
    'status.rate_limited': '限流中',
    'status.error': '出错',
    'status.invalid': '无效',
    'state.active': '已启用',
    'state.inactive': '已停用',
    'outcome.success': '成功',
    'outcome.error': '失败',

    'fmt.micros': '{value} 微美元',
    'fmt.atMost': '≤ {value}',

    'limit.rpm': '{value} 次/分钟',
    'limit.tpm': '{value} Token/分钟',
    'limit.rpd': '{value} 次/天',
    'limitName.rpm': '每分钟请求数',
    'limitName.tpm': '每分钟 Token 数',
    'limitName.rpd': '每日请求数',

    'dashboard.title': '仪表盘',
    'dashboard.help': '用量、费用与延迟；日期均按 UTC 计算。',
    'dashboard.refresh': '刷新',
    'dashboard.loading': '正在加载仪表盘…',
    'dashboard.updated': '更新于 {time} UTC',
    'dashboard.period.last_7_days': '近 7 天',
    'dashboard.period.last_30_days': '近 30 天',
    'dashboard.figures': '关键指标',
    'dashboard.todayUtc': '今天（UTC）',
    'dashboard.todayNote': '今天 · {note}',
    'dashboard.kpi.requests': '请求数',
    'dashboard.kpi.requestsNote': '失败 {count}',
    'dashboard.kpi.success_rate': '成功率',
    'dashboard.kpi.success_rateNote': '成功 {count}',
    'dashboard.kpi.tokens': 'Token 用量',
    'dashboard.kpi.tokensNote': '输入 {input} · 输出 {output}',
    'dashboard.kpi.cost': '费用',
    'dashboard.kpi.p50': '延迟 P50',
    'dashboard.kpi.p50Note': '平均 {value}',
    'dashboard.kpi.p95': '延迟 P95',
    'dashboard.kpi.p95Note': '直方图分桶上限',
    'dashboard.kpi.p99': '延迟 P99',
    'dashboard.kpi.p99Note': '直方图分桶上限',
    'dashboard.kpi.cache': '缓存命中',
    'dashboard.kpi.cacheNote': '占调用 {rate} · 节省 {saved}',
    'dashboard.trendRange': '趋势时间范围',
    'dashboard.days': '{count} 天',
    'dashboard.trendLoading': '正在加载趋势…',
    'dashboard.trendTitle': '各供应商每日请求数与费用',
    'dashboard.trendEmpty': '此期间暂无调用。',
    'dashboard.requestsPerDay': '每日请求数',
    'dashboard.costPerDay': '每日费用',
    'dashboard.chartDay': '日期',
    'dashboard.chartAll': '全部',
    'dashboard.topModels': '调用最多的模型',
    'dashboard.last7Days': '近 7 天',
    'dashboard.col.model': '模型',
    'dashboard.col.requests': '请求数',
    'dashboard.col.failed': '失败',
    'dashboard.col.tokens': 'Token 数',
    'dashboard.col.cost': '费用',
    'dashboard.topEmpty': '近 7 天暂无调用。',
    'dashboard.nearLimits': '接近限额的密钥',
    'dashboard.col.key': '密钥',
    'dashboard.col.limit': '限额',
    'dashboard.col.used': '已用',
    'dashboard.nearEmpty': '没有密钥用到限额的 80%。',
    'dashboard.notNormal': '状态异常的密钥',
    'dashboard.col.status': '状态',
    'dashboard.col.active': '启用状态',
    'dashboard.col.cooldown': '冷却',
    'dashboard.notNormalEmpty': '所有密钥状态正常。',
    'dashboard.untilValidated': '直到重新验证',
    'dashboard.cooldownEnded': '已结束（{when}）',
    'dashboard.cooldownUntil': '至 {time} UTC（{when}）',

    'providers.title': '供应商与密钥',
    'providers.help': '密钥保存在密钥存储中，界面上只显示掩码。',
    'providers.add': '添加供应商',
    'providers.loading': '正在加载供应商…',
    'providers.empty': '暂无供应商。',
    'providers.syncModels': '同步模型',
    'providers.addKey': '添加密钥',
    'providers.activated': '供应商 {code} 已启用。',
    'providers.deactivated': '供应商 {code} 已停用。',
    'providers.saved': '供应商 {code} 已保存。',
    'providers.added': '供应商 {code} 已添加。',
    'providers.meta.baseUrl': 'API 地址',
    'providers.meta.models': '模型',
    'providers.meta.modelsValue': '共 {total} 个，已启用 {active} 个',
    'providers.meta.sortOrder': '排序',
    'providers.meta.headers': '请求头',
    'providers.meta.about': '说明',
    'providers.col.key': '密钥',
    'providers.col.secret': '密钥值',
    'providers.col.state': '状态',
    'providers.col.priority': '优先级',
    'providers.col.limits': '限额',
    'providers.col.today': '今日用量',
    'providers.col.lastUsed': '最近使用',
    'providers.today': '{requests} 次请求 · {tokens} Token',
    'providers.validate': '验证',
    'providers.keysEmpty': '暂无密钥：添加密钥后才能使用该供应商。',
    'providers.keyActivated': '密钥 {name} 已启用。',
    'providers.keyDeactivated': '密钥 {name} 已停用。',
    'providers.keySaved': '密钥 {name} 已保存。',
    'providers.keyAdded': '密钥 {name} 已添加。',
    'providers.validating': '正在验证 {name}…',
    'providers.validation': '验证结果：',
    'providers.http': '（HTTP {status}）',
    'providers.noMessage': '无错误信息',
    'providers.valid': '密钥 {name} 有效：供应商列出了 {count} 个模型。状态为正常。',
    'providers.invalid': '密钥 {name} 被拒绝{http}：{message}。状态已改为无效。',
    'providers.rateLimited': '密钥 {name} 当前被限流{http}：{message} 状态保持不变。',
    'providers.unreachable': '无法连接供应商{http}：{message} 无法判断密钥是否可用。',
    'providers.syncing': '正在读取供应商的模型列表…',
    'providers.sync': '同步结果：',
    'providers.syncListed': '供应商列出了 {count} 个模型。',
    'providers.syncAdded': '新增 {count} 个{names}',
    'providers.syncAddedNote': '（默认停用且未定价：请在“模型”页面定价后启用）。',
    'providers.syncNoneAdded': '。',
    'providers.syncRest': '模型目录中已有 {existing} 个；目录中有但供应商未列出的 {missing} 个{names}。',
    'providers.editTitle': '编辑 {name}',
    'providers.addTitle': '添加供应商',
    'providers.editIntro': '请求头的值若按掩码原样提交，将沿用已存储的值。',
    'providers.field.code': '代码',
    'providers.field.codeHint': '仅限 a-z、0-9、_ 和 -；用于模型名（代码/模型）',
    'providers.field.name': '名称',
    'providers.field.kind': '类型',
    'providers.field.baseUrl': 'API 地址',
    'providers.field.baseUrlHint': '{kinds} 必填；其他类型有默认地址',
    'providers.field.sortOrder': '排序',
    'providers.field.description': '描述',
    'providers.field.headers': '额外请求头',
    'providers.field.headersHint': '每行一个，格式为“名称: 值”',
    'providers.field.active': '启用',
    'providers.headerLine': '请求头每行的格式应为“名称: 值”；“{line}”不符合。',
    'keys.editTitle': '编辑密钥 {name}',
    'keys.addTitle': '为 {provider} 添加密钥',
    'keys.editIntro': '当前密钥：{masked}。密钥永远不会完整显示。',
    'keys.addIntro': '密钥将保存在密钥存储中，此后只显示掩码。',
    'keys.field.name': '名称',
    'keys.field.newSecret': '新密钥（将轮换当前密钥）',
    'keys.field.secret': '密钥',
    'keys.field.keepSecret': '留空则保留当前密钥',
    'keys.field.priority': '优先级',
    'keys.field.priorityHint': '数值越大越优先',
    'keys.field.noLimit': '不限',
    'keys.field.active': '启用',

    'models.title': '模型',
    'models.help': '同步的模型默认为停用状态，仅 Maestro 内置了价格的模型带有价格：请先核对价格，再启用。',
    'models.loading': '正在加载模型…',
    'models.filterProvider': '供应商',
    'models.filterState': '状态',
    'models.everyProvider': '所有供应商',
    'models.anyState': '全部状态',
    'models.active': '已启用',
    'models.inactive': '已停用',
    'models.search': '搜索模型',
    'models.col.model': '模型',
    'models.col.tokens': '最大输入 / 输出 Token',
    'models.col.prices': '每百万 Token 价格（输入 / 输出）',
    'models.col.supports': '能力',
    'models.col.state': '状态',
    'models.out': '输出 {count}',
    'models.cached': '缓存 {price}',
    'models.stream': '流式',
    'models.tools': '工具调用',
    'models.vision': '视觉',
    'models.default': '默认',
    'models.empty': '没有匹配的模型。',
    'models.activated': '{id} 已启用。',
    'models.deactivated': '{id} 已停用。',
    'models.saved': '{id} 已保存。',
    'models.editTitle': '编辑 {id}',
    'models.editIntro': '价格单位为美元 / 百万 Token。',
    'models.asInput': '同输入价格',
    'models.asInputHint': '留空则按输入价格计费',
    'models.unknown': '未知',
    'models.field.displayName': '显示名称',
    'models.field.context': '上下文长度（输入 Token）',
    'models.field.maxOutput': '最大输出 Token',
    'models.field.inputPrice': '输入价格（$/百万 Token）',
    'models.field.outputPrice': '输出价格（$/百万 Token）',
    'models.field.cachedPrice': '缓存输入价格（$/百万 Token）',
    'models.field.cacheWritePrice': '缓存写入价格（$/百万 Token）',
    'models.field.streaming': '流式输出',
    'models.field.tools': '工具调用',
    'models.field.vision': '视觉',
    'models.field.active': '启用',
    'models.field.default': '设为同名模型的默认',

    'routes.title': '路由',
    'routes.help': '路由是调用方作为模型名发送的名称：Maestro 按路由的策略在其目标中选择；第一条条件全部满足的规则会改用它自己的目标。',
    'routes.add': '添加路由',
    'routes.loading': '正在加载路由…',
    'routes.empty': '暂无路由。',
    'routes.col.name': '名称',
    'routes.col.strategy': '策略',
    'routes.col.targets': '目标（按顺序）',
    'routes.col.rules': '规则数',
    'routes.col.dropParams': '丢弃不支持的参数',
    'routes.strategy.fallback': '依次降级',
    'routes.strategy.weighted': '按权重',
    'routes.strategy.cheapest': '最便宜优先',
    'routes.strategy.fastest': '最快优先',
    'routes.strategyHint.fallback': '按目标顺序调用：某个目标失败时改用下一个。',
    'routes.strategyHint.weighted': '按权重比例随机选择目标（权重 3 和 1：四次中约三次先调用第一个）；某个目标失败时依次改用其他目标。',
    'routes.strategyHint.cheapest': '按模型目录中的价格，先调用预计费用最低的目标；失败时改用次便宜的。',
    'routes.strategyHint.fastest': '按近期延迟（流式调用按首字节时间），先调用最快的目标；失败时改用次快的。',
    'routes.addTitle': '添加路由',
    'routes.editTitle': '编辑路由 {name}',
    'routes.editorIntro': '调用方把路由名称作为模型名发送。目标从已启用的模型中选择。',
    'routes.field.name': '名称',
    'routes.field.nameHint': '调用方发送的模型名：1–64 个 A-Z a-z 0-9 . _ : - 字符（创建后不可修改）',
    'routes.field.strategy': '策略',
    'routes.field.dropParams': '丢弃目标不支持的参数',
    'routes.field.dropParamsHint': '如 n > 1、logprobs：直接忽略，而不是拒绝请求',
    'routes.field.targets': '目标',
    'routes.targetsHint': '按顺序排列：排在最前的最先调用。',
    'routes.targetsHintWeighted': '权重为不小于 0 的整数，每个目标一个，至少一个大于 0；全部留空表示平均分配。',
    'routes.field.ruleStrategy': '本规则的策略',
    'routes.field.ruleTargets': '本规则的目标',
    'routes.ruleStrategyHint': '沿用路由的策略，作用于本规则的目标。',
    'routes.asRoute': '与路由相同（{strategy}）',
    'routes.weight': '权重',
    'routes.weightOf': '{target} 的权重',
    'routes.moveUp': '上移',
    'routes.moveDown': '下移',
    'routes.remove': '移除',
    'routes.moveTargetUp': '上移 {target}',
    'routes.moveTargetDown': '下移 {target}',
    'routes.removeTarget': '移除 {target}',
    'routes.pickTarget': '选择一个已启用的模型…',
    'routes.noMoreTargets': '所有已启用的模型都已列出',
    'routes.addTarget': '添加目标',
    'routes.noTargets': '暂无目标：请在下方选择。',
    'routes.notInCatalog': '不在模型目录中',
    'routes.rules': '规则',
    'routes.rulesHelp': '按顺序检查，由第一条条件全部满足的规则决定；都不满足时使用路由自身的目标。',
    'routes.noRules': '暂无规则：所有调用都使用路由自身的目标。',
    'routes.addRule': '添加规则',
    'routes.ruleTitle': '规则 {n}',
    'routes.moveRuleUp': '上移规则 {n}',
    'routes.moveRuleDown': '下移规则 {n}',
    'routes.deleteRule': '删除规则 {n}',
    'routes.whenHelp': '填写的条件必须全部满足；留空或选“不限”的条件不参与判断。至少填写一项。',
    'routes.when.cjk': '中日韩文字占比至少为',
    'routes.when.cjkHint': '0 到 1 之间的小数（0.3 或 0,3 即 30%），或带 % 的百分比（30%）：提示词的文字中中文、日文或韩文所占的比例。',
    'routes.when.tokens': '提示词 Token 数超过',
    'routes.when.tokensHint': '整数：提示词的估算 Token 数（o200k 编码）须大于该值。',
    'routes.when.images': '包含图片',
    'routes.when.tools': '包含工具调用',
    'routes.tri.any': '不限',
    'routes.tri.yes': '是',
    'routes.tri.no': '否',
    'routes.when.tag': '标签',
    'routes.when.tagHint': '调用方在 x-maestro-tags 请求头中发送的标签之一（以逗号分隔），须完全一致。',
    'routes.when.user': '用户',
    'routes.when.userHint': '调用方的用户 ID；* 匹配任意字符（如 vip-*）。',
    'routes.error.weight': '{target} 的权重必须是不小于 0 的整数（或全部留空以平均分配）。',
    'routes.error.cjk': '规则 {n}：中日韩文字占比应为 0 到 1 之间的小数（0.3）或百分比（30%）。',
    'routes.error.tokens': '规则 {n}：提示词 Token 数应为不小于 0 的整数。',
    'routes.error.noCondition': '规则 {n} 没有任何条件：请至少填写一项，或删除该规则。',
    'routes.conflict': '你的修改仍保留在这里：再次保存将用你的版本覆盖该版本；取消则查看最新版本。',
    'routes.conflictGone': '该路由已不存在：请取消以查看列表。',
    'routes.saved': '路由 {name} 已保存。',
    'routes.added': '路由 {name} 已添加。',
    'routes.deleteTitle': '删除路由 {name}？',
    'routes.deleteMessage': '此后以“{name}”作为模型名的调用将返回错误。此操作无法撤销。',
    'routes.deleted': '路由 {name} 已删除。',

    'apiKeys.title': 'Maestro API 密钥',
    'apiKeys.help': '调用方用来代替令牌的密钥（mk-…）；每个密钥代表其所有者，并受其模型范围和限额约束。Maestro 只保存哈希值：密钥仅在创建时完整显示一次。',
    'apiKeys.create': '创建密钥',
    'apiKeys.loading': '正在加载 API 密钥…',
    'apiKeys.filterState': '状态',
    'apiKeys.onlyActive': '有效',
    'apiKeys.onlyRevoked': '已吊销',
    'apiKeys.activeAndRevoked': '有效和已吊销',
    'apiKeys.search': '搜索所有者、名称或模型',
    'apiKeys.empty': '暂无 API 密钥。',
    'apiKeys.noMatch': '没有匹配的 API 密钥。',
    'apiKeys.col.name': '名称',
    'apiKeys.col.key': '密钥',
    'apiKeys.col.owner': '所有者（用户）',
    'apiKeys.col.models': '允许的模型',
    'apiKeys.col.limits': '限额',
    'apiKeys.col.state': '状态',
    'apiKeys.col.dates': '创建时间（UTC）',
    'apiKeys.everyModel': '所有模型',
    'apiKeys.limit.tokens': '{value} Token/天',
    'apiKeys.limit.cost': '{value}/天',
    'apiKeys.active': '有效',
    'apiKeys.revoked': '已吊销',
    'apiKeys.revokedAt': '吊销于 {time}',
    'apiKeys.revoke': '吊销',
    'apiKeys.revokeTitle': '吊销密钥 {name}？',
    'apiKeys.revokeMessage': '此后使用 {masked}（所有者 {owner}）的调用将被拒绝（所有实例在 30 秒内生效）。吊销后无法恢复。',
    'apiKeys.revokedToast': '密钥 {name} 已吊销。',
    'apiKeys.createTitle': '创建 Maestro API 密钥',
    'apiKeys.createIntro': '密钥仅在创建后立即显示一次。创建后不能修改所有者、模型和限额：如需修改，请吊销后重新创建。',
    'apiKeys.field.owner': '所有者（用户 ID）',
    'apiKeys.field.ownerHint': '密钥以该用户的身份调用：每条调用日志中都记录该用户 ID',
    'apiKeys.field.name': '名称',
    'apiKeys.field.nameHint': '用于区分同一所有者的多个密钥（如 ci、backend-prod）',
    'apiKeys.field.models': '允许的模型',
    'apiKeys.field.modelsHint': '供应商/模型、模型名或路由名，用空格、逗号或换行分隔；留空表示所有模型',
    'apiKeys.field.tokens': '每日 Token 数',
    'apiKeys.field.cost': '每日费用（美元）',
    'apiKeys.field.costHint': '单位为美元，如 5 或 0.50（也可用逗号作小数点）；按 UTC 日计算',
    'apiKeys.error.whole': '{field}必须是不小于 1 的整数。',
    'apiKeys.error.cost': '每日费用应为大于 0 的美元金额，如 5 或 0.50。',
    'apiKeys.onceTitle': '新密钥 {name}',
    'apiKeys.onceWarning': '请立即复制此密钥：它不会再次显示。Maestro 只保存其哈希值；如果遗失，请吊销后重新创建。',
    'apiKeys.onceLabel': '{owner} 的密钥',
    'apiKeys.onceNext': '此后列表中显示为 {masked}。',
    'apiKeys.copy': '复制',
    'apiKeys.copied': '已复制到剪贴板。',
    'apiKeys.copyByHand': '浏览器不允许访问剪贴板：密钥已选中，请按 Ctrl+C（⌘C）复制。',
    'apiKeys.onceDone': '我已复制',

    'logs.title': '调用日志',
    'logs.help': '所有调用，最新的在前。不记录任何提示词或回答内容。',
    'logs.filters': '筛选条件',
    'logs.filter.from': '开始日期',
    'logs.filter.to': '结束日期',
    'logs.filter.provider': '供应商',
    'logs.filter.model': '模型',
    'logs.filter.modelPlaceholder': '例如 gpt-4o',
    'logs.filter.status': '状态',
    'logs.filter.user': '用户',
    'logs.filter.userPlaceholder': '用户 ID',
    'logs.filter.route': '路由',
    'logs.filter.requestId': '请求 ID',
    'logs.perPage': '每页条数',
    'logs.apply': '查询',
    'logs.reset': '重置',
    'logs.loading': '正在加载调用日志…',
    'logs.newer': '← 较新',
    'logs.older': '较早 →',
    'logs.col.time': '时间（UTC）',
    'logs.col.status': '状态',
    'logs.col.model': '模型',
    'logs.col.user': '用户',
    'logs.col.tokens': '输入 / 输出 Token',
    'logs.col.cost': '费用',
    'logs.col.latency': '延迟',
    'logs.col.tries': '尝试次数',
    'logs.empty': '没有符合筛选条件的调用。',
    'logs.rowLabel': '{id} 的详情',
    'logs.pages': '分页',
    'logs.page': '第 {page} 页 · {count} 条调用',
    'logs.details': '调用详情',
    'logs.detailsNote': 'Maestro 的日志中不保存任何提示词、回答内容或密钥明文。',
    'logs.detail.requestId': '请求 ID',
    'logs.detail.time': '时间（UTC）',
    'logs.detail.user': '用户',
    'logs.detail.provider': '供应商',
    'logs.detail.model': '模型',
    'logs.detail.key': '密钥',
    'logs.detail.route': '路由',
    'logs.detail.routeRule': '路由规则',
    'logs.detail.type': '类型',
    'logs.detail.stream': '流式',
    'logs.detail.status': '状态',
    'logs.detail.statusValue': '{status}（HTTP {code}）',
    'logs.detail.errorCode': '错误码',
    'logs.detail.errorMessage': '错误信息',
    'logs.detail.promptTokens': '输入 Token',
    'logs.detail.cachedTokens': '缓存命中 Token',
    'logs.detail.completionTokens': '输出 Token',
    'logs.detail.cost': '费用',
    'logs.detail.costValue': '{money}（{micros}）',
    'logs.detail.latency': '延迟',
    'logs.detail.ttfb': '首字节时间',
    'logs.detail.attempts': '尝试次数',
  },
};

/** `message` with `{name}` replaced by `params.name`; unknown names stay as written. */
function interpolate(message, params) {
  if (!params) return message;
  return message.replace(/\{(\w+)\}/g, (whole, name) => (params[name] === undefined || params[name] === null ? whole : String(params[name])));
}

/** The message `id` in `lang` (English when that language lacks it, the id when both do). */
export function translate(lang, id, params) {
  const message = messages[lang]?.[id] ?? messages.en[id];
  return message === undefined ? id : interpolate(message, params);
}

/** The console's locale for a stored choice and the browser's language. */
export function pickLocale(stored, browser) {
  if (LOCALES.some(([code]) => code === stored)) return stored;
  return /^zh\b/i.test(browser || '') ? 'zh-CN' : 'en';
}

function storedLocale() {
  try {
    return globalThis.localStorage?.getItem(STORAGE_KEY) ?? null;
  } catch {
    return null; // storage disabled: the browser's language decides
  }
}

let current = null;
/** The current locale: 'en' or 'zh-CN'. */
export function locale() {
  if (!current) current = pickLocale(storedLocale(), globalThis.navigator?.language);
  return current;
}

/** A console message in the current locale, `{name}` filled from `params`. */
export const t = (id, params) => translate(locale(), id, params);

/**
 * A message whose placeholders are elements (or any values): the text around them as strings and
 * `params[name]` in their place, for h() to append. `signin.help` → ['Open the ', <em>, …].
 */
export function tParts(id, params) {
  const message = messages[locale()]?.[id] ?? messages.en[id] ?? id;
  return message.split(/(\{\w+\})/).filter(Boolean)
    .map((piece) => {
      const name = piece.match(/^\{(\w+)\}$/)?.[1];
      return name && params && params[name] !== undefined ? params[name] : piece;
    });
}

const listeners = new Set();
/** Calls `listener(lang)` after each change of locale. */
export function onLocaleChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Switches to `lang`, remembers it across reloads, and re-renders through the listeners. */
export function setLocale(lang) {
  if (!LOCALES.some(([code]) => code === lang)) return;
  try {
    globalThis.localStorage?.setItem(STORAGE_KEY, lang);
  } catch {
    // Not remembered, still switched.
  }
  if (lang === current) return;
  current = lang;
  formats.clear();
  for (const listener of listeners) listener(lang);
}

// ---- Formatting (Intl, in the current locale) -----------------------------------------------

const formats = new Map();
/** One cached Intl formatter per kind and locale. */
function format(kind, make) {
  const key = `${locale()} ${kind}`;
  if (!formats.has(key)) formats.set(key, make(locale()));
  return formats.get(key);
}

const missing = (v) => v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v));
const DASH = '—';

/** 1281 → "1,281". */
export function fmtNumber(n) {
  if (missing(n)) return DASH;
  return format('number', (l) => new Intl.NumberFormat(l, { maximumFractionDigits: 3 })).format(n);
}

/**
 * Micro-USD as exact US dollars, 2 to 6 decimals: 148 → "$0.000148", 1500000 → "$1.50" (zh-CN:
 * "US$1.50"). The amount goes to Intl as a decimal string, so no float rounding creeps in.
 */
export function fmtMoney(micros) {
  if (missing(micros)) return DASH;
  const negative = micros < 0;
  const abs = Math.abs(Math.trunc(micros));
  const decimal = `${negative ? '-' : ''}${Math.floor(abs / 1e6)}.${String(abs % 1e6).padStart(6, '0')}`;
  return format('money', (l) => new Intl.NumberFormat(l, {
    style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 6,
  })).format(decimal);
}

/** A rate 0…1 as a percentage: 0.7778 → "77.8%". */
export function fmtPercent(rate, digits = 1) {
  if (missing(rate)) return DASH;
  return format(`percent${digits}`, (l) => new Intl.NumberFormat(l, {
    style: 'percent', minimumFractionDigits: digits, maximumFractionDigits: digits,
  })).format(rate);
}

/** A latency in ms: "120 ms", "1.5 s" (zh-CN: "120毫秒", "1.5秒"); `bound`: "≤ 120 ms". */
export function fmtDuration(msValue, bound = false) {
  if (missing(msValue)) return DASH;
  const seconds = msValue >= 1000;
  const text = format(seconds ? 'seconds' : 'ms', (l) => new Intl.NumberFormat(l, {
    style: 'unit', unit: seconds ? 'second' : 'millisecond', unitDisplay: 'short', maximumFractionDigits: 1,
  })).format(seconds ? msValue / 1000 : msValue);
  return bound ? t('fmt.atMost', { value: text }) : text;
}

/** Unix ms, or a `YYYY-MM-DD` day, as a Date. */
function toDate(value) {
  if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(value)) return new Date(`${value}T00:00:00Z`);
  return new Date(value);
}

/**
 * A day (unix ms or `YYYY-MM-DD`) in UTC, the stats' days: "Nov 26, 2025" / "2025年11月26日".
 * `options` replace the default style, e.g. `{ month: 'short', day: 'numeric' }` → "Nov 26".
 */
export function fmtDate(value, options = null) {
  if (missing(value)) return DASH;
  const opts = options || { dateStyle: 'medium' };
  return format(`date ${JSON.stringify(opts)}`, (l) => new Intl.DateTimeFormat(l, { ...opts, timeZone: 'UTC' }))
    .format(toDate(value));
}

/** Unix ms as date and time in UTC, 24-hour: "Nov 26, 2025, 13:05:07" / "2025年11月26日 13:05:07". */
export function fmtDateTime(msValue) {
  if (missing(msValue)) return DASH;
  return format('datetime', (l) => new Intl.DateTimeFormat(l, {
    dateStyle: 'medium', timeStyle: 'medium', hourCycle: 'h23', timeZone: 'UTC',
  })).format(new Date(msValue));
}

/** Unix ms as a UTC time of day, 24-hour: "13:05:07". */
export function fmtTime(msValue) {
  if (missing(msValue)) return DASH;
  return format('time', (l) => new Intl.DateTimeFormat(l, { timeStyle: 'medium', hourCycle: 'h23', timeZone: 'UTC' }))
    .format(new Date(msValue));
}

/** "in 4 min.", "2 hr. ago", "now" (zh-CN: "4分钟后", "2小时前", "现在"). */
export function fmtRelative(msValue, now = Date.now()) {
  if (missing(msValue)) return '';
  const diff = msValue - now;
  const abs = Math.abs(diff);
  const rtf = format('relative', (l) => new Intl.RelativeTimeFormat(l, { style: 'short', numeric: 'auto' }));
  if (abs < 10e3) return rtf.format(0, 'second');
  const [size, unit] = abs < 60e3 ? [1e3, 'second'] : abs < 3600e3 ? [60e3, 'minute'] : abs < 86400e3 ? [3600e3, 'hour'] : [86400e3, 'day'];
  return rtf.format(Math.sign(diff) * Math.round(abs / size), unit);
}

/** Names joined as a list in the current language: "a, b" / "a、b". */
export const fmtList = (names) => names.join(t('common.listSeparator'));
