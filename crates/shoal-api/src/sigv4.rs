//! AWS Signature Version 4 verification for the DynamoDB JSON API.
//!
//! [`Verifier::verify`] checks a header-signed request (`Authorization: AWS4-HMAC-SHA256 ...`) against
//! the secret a [`KeyLookup`] returns for its access key id and yields the caller's [`Identity`], or an
//! [`AuthError`] carrying DynamoDB's error type and message (all HTTP 400).
//!
//! Rules enforced, in order:
//! 1. an `Authorization` header is present (presigned query-string requests are not supported);
//! 2. it has `Credential`, `SignedHeaders` and `Signature`, and the request has `X-Amz-Date` or `Date`;
//! 3. the algorithm is `AWS4-HMAC-SHA256`, the date is well formed, the credential has five elements;
//! 4. the scope is `<day of the request date>/<configured region>/dynamodb/aws4_request`;
//! 5. `host`, the date header and (when sent) `x-amz-target` are signed;
//! 6. the date is within ±15 minutes of the server clock;
//! 7. the payload is signed in full: `UNSIGNED-PAYLOAD` and `STREAMING-*` are rejected;
//! 8. the access key id is known;
//! 9. `x-amz-content-sha256`, if sent, is the body's hash;
//! 10. the signature matches (compared in constant time).
//!
//! Rules 1 to 8 need only the request head: [`Verifier::precheck`] runs them before the body is
//! read, so an unauthenticated client cannot make the server buffer a body;
//! [`Verifier::verify_body`] runs 9 and 10.
//!
//! Signing keys are cached per access key for the current day, so a verification costs one SHA-256
//! over the body, one over the (small) canonical request, one HMAC over the string to sign, and a
//! few small allocations (the canonical-request buffer, the returned [`Identity`]).
//!
//! ```
//! use shoal_api::sigv4::{KeyLookup, SecretKey, Verifier};
//!
//! struct OneKey;
//! impl KeyLookup for OneKey {
//!     fn secret_for(&self, id: &str) -> Option<SecretKey> {
//!         (id == "AKID").then(|| SecretKey::new("secret".to_owned()))
//!     }
//! }
//!
//! let verifier = Verifier::new("us-east-1");
//! let headers = http::HeaderMap::new();
//! let uri: http::Uri = "/".parse().unwrap();
//! let err = verifier
//!     .verify(&http::Method::POST, &uri, &headers, b"{}", std::time::SystemTime::now(), &OneKey)
//!     .unwrap_err();
//! assert_eq!(err.type_name(), "MissingAuthenticationTokenException");
//! ```

mod canonical;
mod date;
mod error;
mod header;
mod keys;
mod signing;

use std::borrow::Cow;
use std::time::SystemTime;

use aws_lc_rs::{digest, hmac};
use http::{HeaderMap, HeaderValue, Method, Uri};
use subtle::ConstantTimeEq;

pub use date::MAX_CLOCK_SKEW_SECS;
pub use error::AuthError;
pub use keys::{Identity, KeyLookup, SecretKey};
pub use signing::SIGNING_KEY_CACHE_CAPACITY;

use date::RequestDate;
use header::ALGORITHM;
use signing::SigningKeyCache;

/// The SigV4 service name of the DynamoDB API.
pub const SERVICE: &str = "dynamodb";

const TERMINATOR: &str = "aws4_request";

/// Verifies SigV4-signed DynamoDB requests for one region.
///
/// Holds the region, the service name (`dynamodb`) and a bounded cache of derived signing keys
/// (at most [`SIGNING_KEY_CACHE_CAPACITY`] access keys); share one per node.
pub struct Verifier {
    region: String,
    service: String,
    cache: SigningKeyCache,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("region", &self.region)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// A request head that passed [`Verifier::precheck`]: a well-formed `Authorization` header with a
/// known access key, a correct scope and a fresh date. Only the body checks remain
/// ([`Verifier::verify_body`]). Holds the derived signing key (never printed by `Debug`).
pub struct Prechecked {
    access_key_id: String,
    signed_headers: String,
    signature: String,
    date: RequestDate,
    key: std::sync::Arc<hmac::Key>,
}

impl Prechecked {
    /// The access key id the request claims to be signed with (not yet proven).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }
}

impl std::fmt::Debug for Prechecked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prechecked")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier accepting credentials scoped to `region` and the `dynamodb` service.
    pub fn new(region: impl Into<String>) -> Self {
        Self::for_service(region, SERVICE)
    }

    pub(crate) fn for_service(region: impl Into<String>, service: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            service: service.into(),
            cache: SigningKeyCache::new(),
        }
    }

    /// The region credentials must be scoped to.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Verifies a header-signed request and returns who signed it: [`Verifier::precheck`] then
    /// [`Verifier::verify_body`].
    ///
    /// `uri` is the request target as received (path and query still percent-encoded), `body` the
    /// complete request body (hashed here; an `x-amz-content-sha256` header must agree with it),
    /// `now` the server clock. The secret is fetched from `keys` only after all structural checks pass.
    ///
    /// # Errors
    /// - [`AuthError::MissingAuthenticationToken`]: no `Authorization` header.
    /// - [`AuthError::IncompleteSignature`]: missing `Credential`/`SignedHeaders`/`Signature`, missing
    ///   or malformed date, unsupported algorithm, credential without five elements.
    /// - [`AuthError::InvalidSignature`]: wrong scope (date, region, service, terminator), a required
    ///   header not signed, clock skew over 15 minutes, unsigned/streaming/mismatched payload hash,
    ///   or a signature that does not match.
    /// - [`AuthError::UnrecognizedClient`]: unknown access key id.
    pub fn verify(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
        keys: &dyn KeyLookup,
    ) -> Result<Identity, AuthError> {
        let pre = self.precheck(headers, now, keys)?;
        self.verify_body(&pre, method, uri, headers, body)
    }

    /// Every check that needs only the request head, so a server can refuse a request before
    /// reading (and buffering) its body: rules 1 to 6 and 8 of the module documentation, plus the
    /// refusal of `UNSIGNED-PAYLOAD` and `STREAMING-*` payload hashes. Costs a header parse, a map
    /// lookup of the access key and (once a day per key) the signing-key derivation.
    ///
    /// # Errors
    /// As [`Verifier::verify`], except a payload-hash mismatch and a signature mismatch, which
    /// need the body ([`Verifier::verify_body`]).
    pub fn precheck(
        &self,
        headers: &HeaderMap,
        now: SystemTime,
        keys: &dyn KeyLookup,
    ) -> Result<Prechecked, AuthError> {
        let Some(authorization) = headers.get(http::header::AUTHORIZATION) else {
            return Err(AuthError::missing_token());
        };
        let authorization = lossy(authorization);
        let parts = header::parse_authorization(&authorization);

        let amz_date = headers.get("x-amz-date");
        let http_date = headers.get(http::header::DATE);
        let (credential, signed_headers, signature, (date_value, date_header)) = match (
            parts.credential,
            parts.signed_headers,
            parts.signature,
            amz_date
                .map(|v| (v, "x-amz-date"))
                .or(http_date.map(|v| (v, "date"))),
        ) {
            (Some(c), Some(h), Some(s), Some(d)) => (c, h, s, d),
            (c, h, s, d) => {
                let mut message = String::new();
                for (present, name) in [
                    (c.is_some(), "Credential"),
                    (s.is_some(), "Signature"),
                    (h.is_some(), "SignedHeaders"),
                ] {
                    if !present {
                        message.push_str("Authorization header requires '");
                        message.push_str(name);
                        message.push_str("' parameter. ");
                    }
                }
                if d.is_none() {
                    message.push_str(
                        "Authorization header requires existence of either a 'X-Amz-Date' or a \
                         'Date' header. ",
                    );
                }
                message.push_str("Authorization=");
                message.push_str(&authorization);
                return Err(AuthError::IncompleteSignature(message));
            }
        };

        if parts.algorithm != ALGORITHM {
            return Err(AuthError::IncompleteSignature(format!(
                "Unsupported AWS 'algorithm': '{}'.",
                parts.algorithm
            )));
        }

        let date = parse_request_date(date_value, date_header)?;

        let Some(scope) = header::parse_credential(credential) else {
            return Err(AuthError::IncompleteSignature(format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. \
                 keyid/date/region/service/term, got '{credential}'"
            )));
        };
        self.check_scope(&scope, &date)?;
        check_signed_headers(signed_headers, date_header, headers)?;
        date::check_skew(&date, now)?;
        check_payload_mode(headers)?;

        let Some(secret) = keys.secret_for(scope.access_key_id) else {
            return Err(AuthError::unrecognized_client());
        };
        let key = self.cache.get(
            scope.access_key_id,
            &secret,
            date.day_str(),
            &self.region,
            &self.service,
        );
        drop(secret);
        Ok(Prechecked {
            access_key_id: scope.access_key_id.to_owned(),
            signed_headers: signed_headers.to_owned(),
            signature: signature.to_owned(),
            date,
            key,
        })
    }

    /// The checks that need the body, for a request that passed [`Verifier::precheck`]: the
    /// `x-amz-content-sha256` header (when sent) is the body's hash, and the signature matches
    /// (compared in constant time). `method`, `uri` and `headers` must be the ones prechecked.
    ///
    /// # Errors
    /// [`AuthError::InvalidSignature`]: a payload-hash mismatch or a signature that does not match.
    pub fn verify_body(
        &self,
        pre: &Prechecked,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Identity, AuthError> {
        let payload_hash = payload_hash(headers, body)?;
        let expected = self.signature(
            &pre.key,
            method,
            uri,
            headers,
            &pre.signed_headers,
            &payload_hash,
            &pre.date,
        );
        if bool::from(expected.as_slice().ct_eq(pre.signature.as_bytes())) {
            Ok(Identity {
                access_key_id: pre.access_key_id.clone(),
            })
        } else {
            Err(AuthError::signature_mismatch())
        }
    }

    /// Date, region, service and terminator of the credential scope, with DynamoDB's messages.
    fn check_scope(
        &self,
        scope: &header::CredentialScope<'_>,
        date: &RequestDate,
    ) -> Result<(), AuthError> {
        if scope.date != date.day_str() {
            return Err(AuthError::InvalidSignature(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
                 from HTTP: '{}' != '{}', from '{}'.",
                scope.date,
                date.day_str(),
                date.iso_str()
            )));
        }
        let mut message = String::new();
        if scope.region != self.region {
            message.push_str(&format!(
                "Credential should be scoped to a valid region, not '{}'. ",
                scope.region
            ));
        }
        if scope.service != self.service {
            message.push_str(&format!(
                "Credential should be scoped to correct service: '{}'. ",
                self.service
            ));
        }
        if scope.terminator != TERMINATOR {
            message.push_str(&format!(
                "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'. ",
                scope.terminator
            ));
        }
        if message.is_empty() {
            Ok(())
        } else {
            Err(AuthError::InvalidSignature(message))
        }
    }

    /// The lower-case hex signature the client should have sent.
    #[allow(clippy::too_many_arguments)]
    fn signature(
        &self,
        key: &hmac::Key,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        signed_headers: &str,
        payload_hash: &[u8; 64],
        date: &RequestDate,
    ) -> [u8; 64] {
        let mut buf = Vec::with_capacity(512);
        canonical::write_canonical_request(
            &mut buf,
            method,
            uri,
            headers,
            signed_headers,
            std::str::from_utf8(payload_hash).unwrap_or(""),
        );
        let canonical_hash = hex64(digest::digest(&digest::SHA256, &buf).as_ref());

        buf.clear();
        buf.extend_from_slice(ALGORITHM.as_bytes());
        buf.push(b'\n');
        buf.extend_from_slice(&date.iso);
        buf.push(b'\n');
        for (i, part) in [date.day_str(), &self.region, &self.service, TERMINATOR]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                buf.push(b'/');
            }
            buf.extend_from_slice(part.as_bytes());
        }
        buf.push(b'\n');
        buf.extend_from_slice(&canonical_hash);
        hex64(hmac::sign(key, &buf).as_ref())
    }
}

/// The header value as text; bytes outside UTF-8 become U+FFFD (they can only fail verification).
fn lossy(value: &HeaderValue) -> Cow<'_, str> {
    // `from_utf8` has an ASCII fast path that `from_utf8_lossy`'s chunk iterator lacks; header
    // values are nearly always ASCII.
    match std::str::from_utf8(value.as_bytes()) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(value.as_bytes()),
    }
}

fn parse_request_date(value: &HeaderValue, header: &str) -> Result<RequestDate, AuthError> {
    let text = lossy(value);
    let parsed = if header == "date" {
        date::parse_http_date(&text)
    } else {
        date::parse_amz_date(&text)
    };
    parsed.ok_or_else(|| {
        AuthError::IncompleteSignature(if header == "date" {
            format!("Date must be in RFC 1123 format. Got '{text}'.")
        } else {
            format!(
                "Date must be in ISO-8601 'basic format'. Got '{text}'. See \
                 http://en.wikipedia.org/wiki/ISO_8601"
            )
        })
    })
}

/// `host`, the header the date came from, and `x-amz-target` (when the request has one) must be signed.
fn check_signed_headers(
    signed_headers: &str,
    date_header: &str,
    headers: &HeaderMap,
) -> Result<(), AuthError> {
    let signed = |name: &str| {
        signed_headers
            .split(';')
            .any(|h| h.eq_ignore_ascii_case(name))
    };
    let not_signed = |display: &str| {
        Err(AuthError::InvalidSignature(format!(
            "{display} must be a 'SignedHeader' in the AWS Authorization."
        )))
    };
    if !signed("host") {
        return not_signed("'Host' or ':authority'");
    }
    if !signed(date_header) {
        return not_signed(if date_header == "date" {
            "'Date'"
        } else {
            "'X-Amz-Date'"
        });
    }
    if headers.contains_key("x-amz-target") && !signed("x-amz-target") {
        return not_signed("'X-Amz-Target'");
    }
    Ok(())
}

/// Refuses `x-amz-content-sha256` values that do not promise the body's hash: `UNSIGNED-PAYLOAD`
/// and the `STREAMING-*` (chunk-signed) modes.
fn check_payload_mode(headers: &HeaderMap) -> Result<(), AuthError> {
    let Some(claimed) = headers.get("x-amz-content-sha256") else {
        return Ok(());
    };
    let claimed = claimed.as_bytes();
    if claimed == b"UNSIGNED-PAYLOAD" {
        return Err(AuthError::InvalidSignature(
            "UNSIGNED-PAYLOAD is not supported: 'x-amz-content-sha256' must be the SHA-256 of the \
             request body."
                .to_owned(),
        ));
    }
    if claimed.starts_with(b"STREAMING-") {
        return Err(AuthError::InvalidSignature(
            "Streaming payload signing is not supported: sign the whole request body.".to_owned(),
        ));
    }
    Ok(())
}

/// The hex SHA-256 of `body`, after checking any `x-amz-content-sha256` header against it.
fn payload_hash(headers: &HeaderMap, body: &[u8]) -> Result<[u8; 64], AuthError> {
    let hash = hex64(digest::digest(&digest::SHA256, body).as_ref());
    check_payload_mode(headers)?;
    let Some(claimed) = headers.get("x-amz-content-sha256") else {
        return Ok(hash);
    };
    if !claimed.as_bytes().eq_ignore_ascii_case(&hash) {
        return Err(AuthError::InvalidSignature(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
                .to_owned(),
        ));
    }
    Ok(hash)
}

/// Lower-case hex of a 32-byte digest.
fn hex64(bytes: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    // Only fails if `bytes` is not 32 bytes long, which SHA-256 and HMAC-SHA256 outputs always are.
    let _ = hex::encode_to_slice(bytes, &mut out);
    out
}

#[cfg(test)]
mod tests;
