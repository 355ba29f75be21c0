// Signed calls to the node: the DynamoDB JSON API, GET /status and GET /metrics.
import { sign, bytes } from './sigv4.js';

const KEY = 'shoal.console.creds';
let config = { region: 'us-east-1', node: null };
let clockSkewMs = 0; // server time minus browser time, learnt from a rejected request's Date

export class ApiError extends Error {
  constructor(type, message, status) {
    super(message || type);
    this.type = type;
    this.status = status;
  }
  toString() {
    return `${this.type}: ${this.message}`;
  }
}

export async function loadConfig() {
  try {
    const r = await fetch('/console/config.json', { cache: 'no-store' });
    if (r.ok) config = { ...config, ...(await r.json()) };
  } catch (_) { /* keep the defaults */ }
  return config;
}

export const getConfig = () => config;

export function creds() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || 'null');
  } catch (_) {
    return null;
  }
}

export function setCreds(c) {
  if (c) sessionStorage.setItem(KEY, JSON.stringify(c));
  else sessionStorage.removeItem(KEY);
}

/** Short DynamoDB error type and message of an error response body. */
function parseError(text, status) {
  let body = {};
  try { body = JSON.parse(text); } catch (_) { /* not JSON */ }
  const type = String(body.__type || body.code || `HTTP ${status}`).split('#').pop();
  const message = body.message || body.Message || (body.__type ? '' : text.slice(0, 300));
  return new ApiError(type, message, status);
}

async function signedFetch({ method, host, origin, path, headers = {}, body = '', c }, retried) {
  c = c || creds();
  if (!c) throw new ApiError('NotLoggedIn', 'log in first', 0);
  const now = new Date(Date.now() + clockSkewMs);
  const signed = sign({ method, host, path, headers, body, accessKeyId: c.id, secret: c.secret,
    region: c.region || config.region, now });
  let r;
  try {
    // Bytes, not a string: no browser may then add a charset to the signed Content-Type.
    r = await fetch(origin + path, { method, headers: signed, body: method === 'GET' ? undefined : bytes(body),
      cache: 'no-store', mode: 'cors', credentials: 'omit' });
  } catch (e) {
    throw new ApiError('NetworkError', `${origin}${path}: ${e.message || e}`, 0);
  }
  const text = await r.text();
  if (r.ok) return text;
  const err = parseError(text, r.status);
  // A browser clock off by more than the allowed window: retry once on the server's clock.
  const date = r.headers.get('date');
  if (!retried && date && /expired|not yet current/i.test(err.message)) {
    const skew = Date.parse(date) - Date.now();
    if (Number.isFinite(skew) && Math.abs(skew) > 60000) {
      clockSkewMs = skew;
      return signedFetch({ method, host, origin, path, headers, body, c }, true);
    }
  }
  throw err;
}

/** A DynamoDB operation; resolves to the parsed response, rejects with an ApiError. */
export async function ddb(op, params = {}, c) {
  const text = await signedFetch({
    method: 'POST', host: location.host, origin: location.origin, path: '/', c,
    headers: { 'Content-Type': 'application/x-amz-json-1.0', 'X-Amz-Target': `DynamoDB_20120810.${op}` },
    body: JSON.stringify(params),
  });
  return text ? JSON.parse(text) : {};
}

/** GET /status of the node serving the console, parsed. */
export async function status() {
  return JSON.parse(await signedFetch({ method: 'GET', host: location.host, origin: location.origin,
    path: '/status' }));
}

/** GET /metrics as text, of this node (host null) or of the node at `host` ("ip:port"). */
export function metrics(host) {
  const same = !host || host === location.host;
  return signedFetch({ method: 'GET', host: same ? location.host : host,
    origin: same ? location.origin : `${location.protocol}//${host}`, path: '/metrics' });
}
