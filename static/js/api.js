// JSON over fetch, with the server's error shape turned into ApiError.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || 'HTTP ' + status);
    this.status = status;
    this.code = code || 'http_' + status;
  }
  /** The route is not built on this server (yet). */
  get missing() {
    return this.status === 405 || (this.status === 404 && /route/i.test(this.message));
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

/** api('GET', '/api/rooms') → parsed JSON (or null for 204). Throws ApiError. */
export async function api(method, path, body, { quiet401 = false, timeout = 15000 } = {}) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeout);
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
      signal: ctl.signal,
    });
  } catch (e) {
    throw new ApiError(0, 'network', navigator.onLine ? 'Could not reach the server.' : 'You are offline.');
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  if (res.status !== 204) {
    try { data = await res.json(); } catch { data = null; }
  }
  if (!res.ok) {
    const err = data && data.error ? data.error : {};
    const e = new ApiError(res.status, err.code, err.message);
    if (res.status === 429) {
      const wait = res.headers.get('Retry-After');
      if (wait) e.message = `Too many attempts. Try again in ${wait} s.`;
    }
    if (res.status === 401 && !quiet401) onUnauthorized();
    throw e;
  }
  return data;
}

/** Path segment for a room or user name ("@ann+bob" → "%40ann%2Bbob"). */
export const seg = (name) => encodeURIComponent(name);
