// AWS Signature Version 4 in plain JavaScript: SHA-256 and HMAC-SHA256 written out, because
// crypto.subtle only exists in secure contexts and the console may be served over plain http.

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

const enc = new TextEncoder();

/** UTF-8 bytes of a string (bytes pass through). */
export function bytes(x) {
  return typeof x === 'string' ? enc.encode(x) : x;
}

/** SHA-256 of a string or Uint8Array, as a 32-byte Uint8Array. */
export function sha256(input) {
  const msg = bytes(input);
  const len = msg.length;
  const total = ((len + 9 + 63) >> 6) << 6;
  const buf = new Uint8Array(total);
  buf.set(msg);
  buf[len] = 0x80;
  const view = new DataView(buf.buffer);
  view.setUint32(total - 8, Math.floor(len / 0x20000000));
  view.setUint32(total - 4, (len << 3) >>> 0);
  const h = new Uint32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  ]);
  const w = new Uint32Array(64);
  for (let off = 0; off < total; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + i * 4);
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15], b = w[i - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (hh + S1 + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      hh = g; g = f; f = e; e = (d + t1) | 0;
      d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) ov.setUint32(i * 4, h[i]);
  return out;
}

/** HMAC-SHA256(key, message) as a Uint8Array. */
export function hmac(key, message) {
  let k = bytes(key);
  if (k.length > 64) k = sha256(k);
  const ipad = new Uint8Array(64 + bytes(message).length);
  const opad = new Uint8Array(64 + 32);
  for (let i = 0; i < 64; i++) {
    const b = k[i] || 0;
    ipad[i] = b ^ 0x36;
    opad[i] = b ^ 0x5c;
  }
  ipad.set(bytes(message), 64);
  opad.set(sha256(ipad), 64);
  return sha256(opad);
}

export function hex(b) {
  let s = '';
  for (const x of b) s += (x < 16 ? '0' : '') + x.toString(16);
  return s;
}

/** `20240102T030405Z` for a Date. */
export function amzDate(d) {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
}

/**
 * Signs a request. `headers` holds the headers to send (any case); `host` is signed but not
 * returned (the browser sets it). Returns the headers to send, with X-Amz-Date,
 * X-Amz-Content-Sha256 and Authorization added.
 */
export function sign({ method, host, path, headers = {}, body = '', accessKeyId, secret, region,
  service = 'dynamodb', now = new Date() }) {
  const date = amzDate(now);
  const day = date.slice(0, 8);
  const payloadHash = hex(sha256(body));
  const out = { ...headers, 'X-Amz-Date': date, 'X-Amz-Content-Sha256': payloadHash };
  const canon = { host };
  for (const [k, v] of Object.entries(out)) {
    canon[k.toLowerCase()] = String(v).trim().replace(/ +/g, ' ');
  }
  const names = Object.keys(canon).sort();
  const signedHeaders = names.join(';');
  const canonicalUri = path.split('/').map((s) => encodeURIComponent(s)).join('/');
  const canonicalRequest = [
    method, canonicalUri, '',
    names.map((n) => `${n}:${canon[n]}\n`).join(''),
    signedHeaders, payloadHash,
  ].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', date, scope, hex(sha256(canonicalRequest))].join('\n');
  let key = hmac('AWS4' + secret, day);
  key = hmac(key, region);
  key = hmac(key, service);
  key = hmac(key, 'aws4_request');
  const signature = hex(hmac(key, stringToSign));
  out.Authorization = `AWS4-HMAC-SHA256 Credential=${accessKeyId}/${scope}, ` +
    `SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return out;
}
