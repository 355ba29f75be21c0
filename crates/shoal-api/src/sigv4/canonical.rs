//! The SigV4 canonical request, built byte for byte as the specification describes for services
//! other than S3 (normalised, doubly percent-encoded path).
//!
//! ```text
//! METHOD \n CANONICAL-URI \n CANONICAL-QUERY \n CANONICAL-HEADERS \n SIGNED-HEADERS \n HEX(SHA256(body))
//! ```
//! Every function appends to one `Vec<u8>` so that building a request costs a handful of allocations.

use http::{HeaderMap, Method, Uri};

/// Appends the canonical request to `out`.
///
/// `signed_headers` is the `SignedHeaders` value as the client sent it (names separated by `;`); its
/// names are used, in that order, both for the canonical header block and the signed-headers line.
pub(crate) fn write_canonical_request(
    out: &mut Vec<u8>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    signed_headers: &str,
    payload_hash_hex: &str,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b'\n');
    write_canonical_uri(out, uri.path());
    out.push(b'\n');
    write_canonical_query(out, uri.query().unwrap_or(""));
    out.push(b'\n');
    write_canonical_headers(out, headers, signed_headers, uri);
    out.push(b'\n');
    out.extend_from_slice(signed_headers.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash_hex.as_bytes());
}

/// The path as sent, with dot segments and empty segments removed (RFC 3986 5.2.4), then every byte
/// outside the unreserved set and `/` percent-encoded — so an already-encoded `%20` becomes `%2520`.
fn write_canonical_uri(out: &mut Vec<u8>, path: &str) {
    let needs_normalising = path.is_empty()
        || !path.starts_with('/')
        || path.contains("//")
        || path.split('/').any(|s| s == "." || s == "..");
    if !needs_normalising {
        percent_encode(out, path.as_bytes(), true);
        return;
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    out.push(b'/');
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        percent_encode(out, segment.as_bytes(), false);
    }
    let ends_with_slash = ["/", "/.", "/..", "/./", "/../"]
        .iter()
        .any(|s| path.ends_with(s));
    if ends_with_slash && !segments.is_empty() {
        out.push(b'/');
    }
}

/// Query parameters decoded (`+` is a space, as form encoding and the AWS signers treat it), re-encoded
/// strictly, sorted by encoded name then encoded value, joined as `name=value` with `&`.
fn write_canonical_query(out: &mut Vec<u8>, query: &str) {
    if query.is_empty() {
        return;
    }
    let mut params: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for pair in query.split('&') {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let mut enc_name = Vec::with_capacity(name.len());
        let mut enc_value = Vec::with_capacity(value.len());
        percent_encode(&mut enc_name, form_decode(name).as_bytes(), false);
        percent_encode(&mut enc_value, form_decode(value).as_bytes(), false);
        params.push((enc_name, enc_value));
    }
    params.sort();
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(name);
        out.push(b'=');
        out.extend_from_slice(value);
    }
}

/// `name:value\n` for each signed header: values of repeated headers joined with `,`, each value
/// trimmed of surrounding spaces with runs of spaces collapsed to one. A signed `host` that is not a
/// header (HTTP/2) is taken from the URI authority; any other signed header that is absent gets an
/// empty value (the signature then simply fails to match unless the client did the same).
fn write_canonical_headers(
    out: &mut Vec<u8>,
    headers: &HeaderMap,
    signed_headers: &str,
    uri: &Uri,
) {
    for name in signed_headers.split(';') {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut values = headers.get_all(name).iter().peekable();
        if values.peek().is_none()
            && name.eq_ignore_ascii_case("host")
            && let Some(authority) = uri.authority()
        {
            write_trimmed(out, authority.as_str().as_bytes());
        }
        let mut first = true;
        for value in values {
            if !first {
                out.push(b',');
            }
            first = false;
            write_trimmed(out, value.as_bytes());
        }
        out.push(b'\n');
    }
}

/// Appends `value` without leading or trailing spaces and with each run of spaces collapsed to one.
fn write_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let mut previous_space = false;
    let start = out.len();
    for &b in value {
        if b == b' ' {
            previous_space = true;
            continue;
        }
        if previous_space && out.len() > start {
            out.push(b' ');
        }
        previous_space = false;
        out.push(b);
    }
}

/// Percent-decodes a query component, `+` meaning space; invalid escapes are kept literally and
/// invalid UTF-8 is replaced, as the AWS signers do.
fn form_decode(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return std::borrow::Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => decoded.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|&c| hex_value(c));
                let lo = bytes.get(i + 2).and_then(|&c| hex_value(c));
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    decoded.push((hi << 4) | lo);
                    i += 3;
                    continue;
                }
                decoded.push(b'%');
            }
            other => decoded.push(other),
        }
        i += 1;
    }
    std::borrow::Cow::Owned(String::from_utf8_lossy(&decoded).into_owned())
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Appends `bytes` with everything but the RFC 3986 unreserved characters (and `/` when
/// `keep_slash`) written as `%XX` with upper-case hex.
fn percent_encode(out: &mut Vec<u8>, bytes: &[u8], keep_slash: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        let unreserved = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        if unreserved || (keep_slash && b == b'/') {
            out.push(b);
        } else {
            out.push(b'%');
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0x0f)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri_of(path: &str) -> String {
        let mut out = Vec::new();
        write_canonical_uri(&mut out, path);
        String::from_utf8(out).unwrap()
    }

    fn query_of(q: &str) -> String {
        let mut out = Vec::new();
        write_canonical_query(&mut out, q);
        String::from_utf8(out).unwrap()
    }

    fn trimmed(v: &str) -> String {
        let mut out = Vec::new();
        write_trimmed(&mut out, v.as_bytes());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn empty_path_is_slash() {
        assert_eq!(uri_of(""), "/");
        assert_eq!(uri_of("/"), "/");
    }

    #[test]
    fn path_is_normalised_and_double_encoded() {
        assert_eq!(uri_of("/foo%20bar"), "/foo%2520bar");
        assert_eq!(uri_of("/a/./b/../c"), "/a/c");
        assert_eq!(uri_of("//a//b/"), "/a/b/");
        assert_eq!(uri_of("/../"), "/");
        assert_eq!(uri_of("/a/b/."), "/a/b/");
        assert_eq!(uri_of("/a b*"), "/a%20b%2A");
    }

    #[test]
    fn query_is_decoded_encoded_and_sorted() {
        assert_eq!(query_of("b=2&a=1&a=0"), "a=0&a=1&b=2");
        assert_eq!(query_of("x&y="), "x=&y=");
        assert_eq!(query_of("k=a+b%2Fc"), "k=a%20b%2Fc");
        assert_eq!(query_of("k=%zz"), "k=%25zz");
        assert_eq!(query_of("&&k=~v"), "k=~v");
    }

    #[test]
    fn header_values_are_trimmed_and_spaces_collapsed() {
        assert_eq!(trimmed("  a   b  c "), "a b c");
        assert_eq!(trimmed("   "), "");
        assert_eq!(trimmed("a\tb"), "a\tb");
    }
}
