// The only way the console talks to Maestro: its public admin and stats APIs, with the token the
// user signed in with. Errors come back as ApiError carrying the OpenAI-shaped `error.message`
// (the server's words, shown as they are; only the console's own messages are translated).

import { t } from './i18n.js';

const TOKEN_KEY = 'maestro.admin.token';

// The API sits one level above the page (`/admin/` → `/`), under any stage prefix it has.
const apiBase = new URL('../', document.baseURI);

export class ApiError extends Error {
  constructor(status, message, code = null, param = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.param = param;
  }
}

// sessionStorage: the token lives as long as the tab, and never reaches another tab or a disk
// profile the way localStorage would.
export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  set: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

// Requests in flight: `aria-busy` on <body> while any runs (assistive tech, and tests, wait on it).
let inflight = 0;
function busy(delta) {
  inflight += delta;
  if (inflight > 0) document.body.setAttribute('aria-busy', 'true');
  else document.body.removeAttribute('aria-busy');
}

let onAuthFailure = () => {};
/** Called with the ApiError of any 401/403: the token is gone or not an admin's. */
export function whenAuthFails(handler) {
  onAuthFailure = handler;
}

/**
 * One API call. `query` entries that are empty are left out; `body` is sent as JSON; `headers`
 * are added (e.g. `If-Match`). Resolves to the parsed JSON (null for 204), rejects with an ApiError.
 */
export async function api(path, { method = 'GET', query, body, headers: extra } = {}) {
  const url = new URL(path.replace(/^\//, ''), apiBase);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, String(value));
  }
  const headers = { ...extra, Accept: 'application/json', Authorization: `Bearer ${session.token() || ''}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  busy(+1);
  let response;
  let text;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
    text = await response.text();
  } catch (e) {
    throw new ApiError(0, t('api.unreachable', { message: e.message }));
  } finally {
    // After this task's handlers have rendered the answer.
    setTimeout(() => busy(-1));
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const e = data && data.error ? data.error : {};
    const error = new ApiError(response.status, e.message || `HTTP ${response.status}`, e.code, e.param);
    if (response.status === 401 || response.status === 403) onAuthFailure(error);
    throw error;
  }
  return data;
}

/**
 * A file from the API (an export): GET with the token in the header, never in the address, so
 * it cannot reach the history or a log. Resolves to the Blob and the file name the server gave.
 */
export async function download(path, { query } = {}) {
  const url = new URL(path.replace(/^\//, ''), apiBase);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, String(value));
  }
  busy(+1);
  let response;
  let blob;
  try {
    response = await fetch(url, {
      headers: { Authorization: `Bearer ${session.token() || ''}` }, cache: 'no-store', credentials: 'omit',
    });
    blob = await response.blob();
  } catch (e) {
    throw new ApiError(0, t('api.unreachable', { message: e.message }));
  } finally {
    setTimeout(() => busy(-1));
  }
  if (!response.ok) {
    let e = {};
    try {
      e = JSON.parse(await blob.text()).error || {};
    } catch {
      // Not JSON: the status says enough.
    }
    const error = new ApiError(response.status, e.message || `HTTP ${response.status}`, e.code, e.param);
    if (response.status === 401 || response.status === 403) onAuthFailure(error);
    throw error;
  }
  const name = (response.headers.get('content-disposition') || '').match(/filename="([^"]+)"/)?.[1] || 'export.csv';
  return { blob, name };
}

/** A versioned update: PUT with the version the item was read at. */
export function update(path, item, changes) {
  return api(path, { method: 'PUT', body: { version: item.version, ...changes } });
}

/** A versioned delete: only at the version the item was read at (`If-Match`). */
export function remove(path, item) {
  return api(path, { method: 'DELETE', headers: { 'If-Match': `"${item.version}"` } });
}

/** Path segment encoding for ids such as `provider/model`. */
export const seg = (id) => encodeURIComponent(id);

/**
 * Runs a versioned write. On a 409 (someone changed the item since it was read) it reloads the
 * view and rethrows with a message saying so; the caller shows it.
 */
export async function reloadIfStale(action, reload) {
  try {
    return await action();
  } catch (e) {
    if (e.status === 409) {
      reload();
      e.message = `${e.message.replace(/\.?$/, '.')} ${t('api.stale')}`;
    }
    throw e;
  }
}
