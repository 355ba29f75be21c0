//! AWS Signature Version 4 (header form) for DynamoDB JSON requests, built to be cheap.
//!
//! Every request the bench sends is `POST /` with the same four signed headers (`content-type`,
//! `host`, `x-amz-date`, `x-amz-target`), so the canonical request is written directly into a
//! reused buffer instead of being assembled from a general header map. The signing key (four
//! HMACs) depends only on the secret, the day, the region and the service, so it is derived once
//! per UTC day and cached. Per request the cost is one SHA-256 of the body, one of the canonical
//! request, and one HMAC of the string to sign.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::{digest, hmac};

/// The content type of every DynamoDB JSON request.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";
const SERVICE: &str = "dynamodb";
const SIGNED_HEADERS: &str = "content-type;host;x-amz-date;x-amz-target";

/// Signs DynamoDB requests for one access key, region and host.
///
/// Holds reusable buffers, so keep one per connection (signing takes `&mut self`).
pub struct Signer {
    access_key_id: String,
    secret: String,
    region: String,
    host: String,
    /// The UTC day number the cached key is for, the key, and the credential scope.
    cached: Option<(u64, hmac::Key, String)>,
    canonical: String,
    string_to_sign: String,
}

/// The headers a signature adds to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The `x-amz-date` header value, `YYYYMMDDTHHMMSSZ`.
    pub amz_date: String,
    /// The `authorization` header value.
    pub authorization: String,
}

impl Signer {
    /// A signer for requests to `host` (the `host` header value, e.g. `127.0.0.1:8000`).
    pub fn new(access_key_id: &str, secret: &str, region: &str, host: &str) -> Self {
        Signer {
            access_key_id: access_key_id.to_string(),
            secret: secret.to_string(),
            region: region.to_string(),
            host: host.to_string(),
            cached: None,
            canonical: String::with_capacity(512),
            string_to_sign: String::with_capacity(256),
        }
    }

    /// The `host` header value this signer signs.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Signs `POST /` with the given `x-amz-target` and body at time `now`.
    ///
    /// Times before the Unix epoch are signed as the epoch (such a clock is unusable anyway).
    pub fn sign(&mut self, now: SystemTime, target: &str, body: &[u8]) -> Signed {
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let day = secs / 86_400;
        let amz_date = format_amz_date(secs);

        if self.cached.as_ref().map(|(d, _, _)| *d) != Some(day) {
            self.cached = None;
        }
        let (_, key, scope) = self.cached.get_or_insert_with(|| {
            let date = amz_date.get(..8).unwrap_or_default();
            let key = signing_key(&self.secret, date, &self.region);
            let scope = format!("{date}/{}/{SERVICE}/aws4_request", self.region);
            (day, key, scope)
        });

        let body_hash = digest::digest(&digest::SHA256, body);
        self.canonical.clear();
        // Infallible: writing to a String.
        let _ = write!(
            self.canonical,
            "POST\n/\n\ncontent-type:{CONTENT_TYPE}\nhost:{}\nx-amz-date:{amz_date}\nx-amz-target:{}\n\n{SIGNED_HEADERS}\n",
            self.host.trim(),
            target.trim(),
        );
        push_hex(&mut self.canonical, body_hash.as_ref());
        let canonical_hash = digest::digest(&digest::SHA256, self.canonical.as_bytes());

        self.string_to_sign.clear();
        let _ = write!(
            self.string_to_sign,
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n"
        );
        push_hex(&mut self.string_to_sign, canonical_hash.as_ref());
        let signature = hmac::sign(key, self.string_to_sign.as_bytes());

        let mut authorization = String::with_capacity(200);
        let _ = write!(
            authorization,
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={SIGNED_HEADERS}, Signature=",
            self.access_key_id
        );
        push_hex(&mut authorization, signature.as_ref());
        Signed {
            amz_date,
            authorization,
        }
    }
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
fn signing_key(secret: &str, date: &str, region: &str) -> hmac::Key {
    let mut k = Vec::with_capacity(4 + secret.len());
    k.extend_from_slice(b"AWS4");
    k.extend_from_slice(secret.as_bytes());
    let mut tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &k), date.as_bytes());
    for part in [region.as_bytes(), SERVICE.as_bytes(), b"aws4_request"] {
        tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref()), part);
    }
    hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref())
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

/// Formats Unix seconds as `YYYYMMDDTHHMMSSZ` (UTC), without a calendar library.
pub(crate) fn format_amz_date(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`, for non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    use aws_smithy_runtime_api::client::identity::Identity;

    /// The `authorization` header the official `aws-sigv4` crate produces for the same request.
    fn official(time: SystemTime, host: &str, target: &str, body: &[u8]) -> (String, String) {
        let identity: Identity =
            Credentials::new("AKIDEXAMPLE", "s3cr3t/KEY+x", None, None, "t").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("eu-west-3")
            .name("dynamodb")
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let headers = [
            ("content-type", CONTENT_TYPE),
            ("host", host),
            ("x-amz-target", target),
        ];
        let signable = SignableRequest::new(
            "POST",
            format!("http://{host}/"),
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let (added, _) = instructions.into_parts();
        let get = |name: &str| {
            added
                .iter()
                .find(|h| h.name() == name)
                .map(|h| h.value().to_string())
                .unwrap()
        };
        (get("x-amz-date"), get("authorization"))
    }

    #[test]
    fn signature_matches_the_official_aws_sigv4_crate() {
        let mut signer = Signer::new("AKIDEXAMPLE", "s3cr3t/KEY+x", "eu-west-3", "127.0.0.1:8000");
        let cases: [(u64, &str, &[u8]); 4] = [
            (
                1_700_000_000,
                "DynamoDB_20120810.GetItem",
                br#"{"TableName":"t","Key":{"pk":{"S":"a"}}}"#,
            ),
            (1_700_000_001, "DynamoDB_20120810.PutItem", b""),
            // Next day: the cached signing key must be replaced.
            (1_700_086_400, "DynamoDB_20120810.Query", b"{}"),
            // Leap day.
            (
                951_782_400 + 3_661,
                "DynamoDB_20120810.Scan",
                "ünïcode".as_bytes(),
            ),
        ];
        for (secs, target, body) in cases {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            let ours = signer.sign(t, target, body);
            let (date, auth) = official(t, "127.0.0.1:8000", target, body);
            assert_eq!(ours.amz_date, date, "at {secs}");
            assert_eq!(ours.authorization, auth, "at {secs}");
        }
    }

    #[test]
    fn amz_date_is_utc_calendar_time() {
        assert_eq!(format_amz_date(0), "19700101T000000Z");
        assert_eq!(format_amz_date(951_782_400 + 3_661), "20000229T010101Z");
        assert_eq!(format_amz_date(1_700_000_000), "20231114T221320Z");
        assert_eq!(format_amz_date(4_102_444_799), "20991231T235959Z");
    }
}
