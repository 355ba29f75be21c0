//! SigV4 verification against requests signed by the official AWS signer (`aws-sigv4`) and against a
//! vector computed by hand, plus rejection of every tampered part with DynamoDB's error types.

// Helpers outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_lc_rs::{digest, hmac};
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use http::{HeaderMap, HeaderValue, Method, Uri};
use proptest::prelude::*;
use shoal_api::sigv4::{AuthError, Identity, KeyLookup, SecretKey, Verifier};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const HOST: &str = "dynamodb.us-east-1.amazonaws.com";
const TARGET: &str = "DynamoDB_20120810.GetItem";
const BODY: &[u8] = br#"{"TableName":"Music","Key":{"Artist":{"S":"No One You Know"}}}"#;

struct Keys;
impl KeyLookup for Keys {
    fn secret_for(&self, id: &str) -> Option<SecretKey> {
        (id == AKID).then(|| SecretKey::new(SECRET.to_owned()))
    }
}

/// 2024-01-02T03:04:05Z.
fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_704_164_645)
}

/// A request as the server sees it: origin-form URI, headers, body.
struct Req {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Req {
    fn verify_at(&self, verifier: &Verifier, now: SystemTime) -> Result<Identity, AuthError> {
        verifier.verify(
            &self.method,
            &self.uri,
            &self.headers,
            &self.body,
            now,
            &Keys,
        )
    }

    fn verify(&self) -> Result<Identity, AuthError> {
        self.verify_at(&Verifier::new("us-east-1"), t0())
    }

    fn authorization(&self) -> String {
        self.headers["authorization"].to_str().unwrap().to_owned()
    }

    fn set(&mut self, name: &'static str, value: &str) {
        self.headers
            .insert(name, HeaderValue::from_str(value).unwrap());
    }
}

struct Signing<'a> {
    path_and_query: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    body: &'a [u8],
    region: &'a str,
    secret: &'a str,
    session_token: Option<&'a str>,
    time: SystemTime,
    settings: SigningSettings,
    signable_body: Option<SignableBody<'a>>,
}

impl Default for Signing<'_> {
    fn default() -> Self {
        Self {
            path_and_query: "/",
            headers: vec![
                ("host", HOST),
                ("content-type", "application/x-amz-json-1.0"),
                ("x-amz-target", TARGET),
            ],
            body: BODY,
            region: "us-east-1",
            secret: SECRET,
            session_token: None,
            time: t0(),
            settings: SigningSettings::default(),
            signable_body: None,
        }
    }
}

/// Signs with the official `aws-sigv4` signer, as the AWS SDKs do.
fn sdk_sign(s: Signing<'_>) -> Req {
    let identity = Credentials::new(
        AKID,
        s.secret,
        s.session_token.map(str::to_owned),
        None,
        "test",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(s.region)
        .name("dynamodb")
        .time(s.time)
        .settings(s.settings)
        .build()
        .unwrap()
        .into();
    let url = format!("https://{HOST}{}", s.path_and_query);
    let signable = SignableRequest::new(
        "POST",
        url.clone(),
        s.headers.iter().copied(),
        s.signable_body.unwrap_or(SignableBody::Bytes(s.body)),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut request = http::Request::builder().method("POST").uri(&url);
    for (name, value) in &s.headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(()).unwrap();
    instructions.apply_to_request_http1x(&mut request);
    Req {
        method: Method::POST,
        uri: s.path_and_query.parse().unwrap(),
        headers: request.headers().clone(),
        body: s.body.to_vec(),
    }
}

fn signed() -> Req {
    sdk_sign(Signing::default())
}

fn invalid_signature(msg: &str) -> AuthError {
    AuthError::InvalidSignature(msg.to_owned())
}

const MISMATCH: &str = "The request signature we calculated does not match the signature you \
    provided. Check your AWS Secret Access Key and signing method. Consult the service documentation \
    for details.";

// ---- accepted ----

#[test]
fn sdk_signed_dynamodb_post_is_accepted() {
    let identity = signed().verify().unwrap();
    assert_eq!(
        identity,
        Identity {
            access_key_id: AKID.to_owned()
        }
    );
}

#[test]
fn sdk_signed_request_is_accepted_anywhere_within_fifteen_minutes() {
    let req = signed();
    let v = Verifier::new("us-east-1");
    for offset in [0, 60, 899, 900] {
        assert!(
            req.verify_at(&v, t0() + Duration::from_secs(offset))
                .is_ok(),
            "+{offset}"
        );
        assert!(
            req.verify_at(&v, t0() - Duration::from_secs(offset))
                .is_ok(),
            "-{offset}"
        );
    }
}

#[test]
fn query_strings_are_canonicalised_like_the_sdk() {
    for pq in [
        "/?b=2&a=1",
        "/?Action=ListTables&Version=2012-08-10&empty=&flag",
        "/?k=a%20b&k=a&z=%2F%3D%26",
        "/some/path%20with/%7Etilde?x=y",
    ] {
        let req = sdk_sign(Signing {
            path_and_query: pq,
            ..Signing::default()
        });
        assert!(req.verify().is_ok(), "{pq}: {:?}", req.verify());
    }
}

#[test]
fn odd_but_legal_header_spacing_is_accepted() {
    let req = sdk_sign(Signing {
        headers: vec![
            ("host", HOST),
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", TARGET),
            ("x-custom", "a   b    c  "),
            ("x-spaced", "one two"),
        ],
        ..Signing::default()
    });
    assert!(req.authorization().contains("x-custom"));
    assert!(req.verify().is_ok(), "{:?}", req.verify());
}

#[test]
fn repeated_headers_are_joined_with_commas() {
    let req = sdk_sign(Signing {
        headers: vec![
            ("host", HOST),
            ("x-amz-target", TARGET),
            ("x-multi", "first"),
            ("x-multi", "second"),
        ],
        ..Signing::default()
    });
    assert_eq!(req.headers.get_all("x-multi").iter().count(), 2);
    assert!(req.verify().is_ok(), "{:?}", req.verify());
}

#[test]
fn signed_session_token_is_accepted_for_a_known_key() {
    let req = sdk_sign(Signing {
        session_token: Some("FQoGZXIvYXdzEXAMPLETOKEN"),
        ..Signing::default()
    });
    assert!(req.authorization().contains("x-amz-security-token"));
    assert!(req.verify().is_ok());
}

#[test]
fn signed_content_sha256_header_is_accepted() {
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let req = sdk_sign(Signing {
        settings,
        ..Signing::default()
    });
    assert!(req.headers.contains_key("x-amz-content-sha256"));
    assert!(req.verify().is_ok());
}

/// A request whose signature is computed here step by step from the SigV4 specification, with the
/// AWS documentation's example secret, so acceptance does not rest on one signer alone.
#[test]
fn hand_computed_vector_is_accepted() {
    let body = br#"{"TableName":"Music"}"#;
    let body_hash = hex::encode(digest::digest(&digest::SHA256, body));
    let canonical = format!(
        "POST\n/\n\ncontent-type:application/x-amz-json-1.0\nhost:localhost:8000\n\
         x-amz-date:20240102T030405Z\nx-amz-target:DynamoDB_20120810.DescribeTable\n\n\
         content-type;host;x-amz-date;x-amz-target\n{body_hash}"
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n20240102T030405Z\n20240102/us-east-1/dynamodb/aws4_request\n{}",
        hex::encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
    );
    let mac = |key: &[u8], data: &str| {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
            .as_ref()
            .to_vec()
    };
    let k_date = mac(format!("AWS4{SECRET}").as_bytes(), "20240102");
    let k_region = mac(&k_date, "us-east-1");
    let k_service = mac(&k_region, "dynamodb");
    let k_signing = mac(&k_service, "aws4_request");
    let signature = hex::encode(mac(&k_signing, &string_to_sign));

    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    headers.insert("host", HeaderValue::from_static("localhost:8000"));
    headers.insert("x-amz-date", HeaderValue::from_static("20240102T030405Z"));
    headers.insert(
        "x-amz-target",
        HeaderValue::from_static("DynamoDB_20120810.DescribeTable"),
    );
    // Extra spaces around the components are legal.
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={AKID}/20240102/us-east-1/dynamodb/aws4_request,  \
         SignedHeaders=content-type;host;x-amz-date;x-amz-target,Signature={signature}"
    );
    headers.insert("authorization", HeaderValue::from_str(&auth).unwrap());
    let req = Req {
        method: Method::POST,
        uri: "/".parse().unwrap(),
        headers,
        body: body.to_vec(),
    };
    assert_eq!(req.verify().unwrap().access_key_id, AKID);
}

/// Signs by hand (HMAC chain written out here) a POST to `/` with the given headers, all signed.
fn hand_sign(headers: &[(&'static str, &'static str)], date_iso: &str, body: &[u8]) -> Req {
    let mut sorted = headers.to_vec();
    sorted.sort();
    let names: Vec<&str> = sorted.iter().map(|(n, _)| *n).collect();
    let signed_headers = names.join(";");
    let canonical_headers: String = sorted.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let body_hash = hex::encode(digest::digest(&digest::SHA256, body));
    let canonical = format!("POST\n/\n\n{canonical_headers}\n{signed_headers}\n{body_hash}");
    let day = &date_iso[..8];
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{date_iso}\n{day}/us-east-1/dynamodb/aws4_request\n{}",
        hex::encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
    );
    let mac = |key: &[u8], data: &str| {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
            .as_ref()
            .to_vec()
    };
    let mut key = format!("AWS4{SECRET}").into_bytes();
    for part in [day, "us-east-1", "dynamodb", "aws4_request"] {
        key = mac(&key, part);
    }
    let signature = hex::encode(mac(&key, &string_to_sign));
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(*name, HeaderValue::from_static(value));
    }
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={AKID}/{day}/us-east-1/dynamodb/aws4_request, \
         SignedHeaders={signed_headers}, Signature={signature}"
    );
    map.insert("authorization", HeaderValue::from_str(&auth).unwrap());
    Req {
        method: Method::POST,
        uri: "/".parse().unwrap(),
        headers: map,
        body: body.to_vec(),
    }
}

#[test]
fn signed_http_date_header_is_accepted_without_x_amz_date() {
    let req = hand_sign(
        &[
            ("host", "localhost:8000"),
            ("date", "Tue, 02 Jan 2024 03:04:05 GMT"),
            ("x-amz-target", TARGET),
        ],
        "20240102T030405Z",
        BODY,
    );
    assert_eq!(req.verify().unwrap().access_key_id, AKID);
}

#[test]
fn unsigned_http_date_header_is_rejected() {
    let mut req = hand_sign(
        &[("host", "localhost:8000"), ("x-amz-target", TARGET)],
        "20240102T030405Z",
        BODY,
    );
    req.set("date", "Tue, 02 Jan 2024 03:04:05 GMT");
    assert_eq!(
        req.verify(),
        Err(invalid_signature(
            "'Date' must be a 'SignedHeader' in the AWS Authorization."
        ))
    );
}

#[test]
fn host_is_taken_from_the_uri_authority_when_there_is_no_host_header() {
    let mut req = signed();
    req.headers.remove("host");
    req.uri = format!("https://{HOST}/").parse().unwrap();
    assert!(req.verify().is_ok(), "{:?}", req.verify());
}

#[test]
fn rotated_secret_is_not_served_from_the_signing_key_cache() {
    struct Rotating(std::sync::Mutex<&'static str>);
    impl KeyLookup for Rotating {
        fn secret_for(&self, id: &str) -> Option<SecretKey> {
            let secret = *self.0.lock().unwrap();
            (id == AKID).then(|| SecretKey::new(secret.to_owned()))
        }
    }
    let keys = Rotating(std::sync::Mutex::new(SECRET));
    let verifier = Verifier::new("us-east-1");
    let req = signed();
    let verify = || verifier.verify(&req.method, &req.uri, &req.headers, &req.body, t0(), &keys);
    assert!(verify().is_ok());
    *keys.0.lock().unwrap() = "rotated-secret";
    assert_eq!(verify(), Err(invalid_signature(MISMATCH)));
    *keys.0.lock().unwrap() = SECRET;
    assert!(verify().is_ok());
}

#[test]
fn unsupported_algorithm_is_incomplete_signature() {
    let mut req = signed();
    let auth = req
        .authorization()
        .replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512");
    req.set("authorization", &auth);
    assert_eq!(
        req.verify(),
        Err(AuthError::IncompleteSignature(
            "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'.".to_owned()
        ))
    );
}

// ---- rejected: tampering ----

#[test]
fn flipped_body_byte_is_rejected() {
    let mut req = signed();
    req.body[10] ^= 1;
    assert_eq!(req.verify(), Err(invalid_signature(MISMATCH)));
}

#[test]
fn changed_target_header_is_rejected() {
    let mut req = signed();
    req.set("x-amz-target", "DynamoDB_20120810.DeleteItem");
    assert_eq!(req.verify(), Err(invalid_signature(MISMATCH)));
}

#[test]
fn flipped_signature_character_is_rejected() {
    let mut req = signed();
    let auth = req.authorization();
    let last = auth.chars().last().unwrap();
    let flipped = if last == '0' { '1' } else { '0' };
    req.set(
        "authorization",
        &format!("{}{flipped}", &auth[..auth.len() - 1]),
    );
    assert_eq!(req.verify(), Err(invalid_signature(MISMATCH)));
}

#[test]
fn upper_case_or_truncated_signature_is_rejected() {
    let auth = signed().authorization();
    let (head, signature) = auth.split_once("Signature=").unwrap();
    assert!(
        signature.bytes().any(|b| b.is_ascii_lowercase()),
        "{signature}"
    );
    let upper = format!("{head}Signature={}", signature.to_uppercase());
    let truncated = format!("{head}Signature={}", &signature[..signature.len() - 2]);
    for tampered in [upper, truncated] {
        let mut req = signed();
        req.set("authorization", &tampered);
        assert_eq!(req.verify(), Err(invalid_signature(MISMATCH)), "{tampered}");
    }
}

#[test]
fn wrong_secret_is_rejected() {
    let req = sdk_sign(Signing {
        secret: "not-the-secret",
        ..Signing::default()
    });
    assert_eq!(req.verify(), Err(invalid_signature(MISMATCH)));
}

#[test]
fn other_region_is_rejected_with_scope_message() {
    let req = sdk_sign(Signing {
        region: "eu-west-9",
        ..Signing::default()
    });
    assert_eq!(
        req.verify(),
        Err(invalid_signature(
            "Credential should be scoped to a valid region, not 'eu-west-9'. "
        ))
    );
}

#[test]
fn other_service_is_rejected_with_scope_message() {
    let mut req = signed();
    let auth = req.authorization().replace("/dynamodb/", "/s3/");
    req.set("authorization", &auth);
    assert_eq!(
        req.verify(),
        Err(invalid_signature(
            "Credential should be scoped to correct service: 'dynamodb'. "
        ))
    );
}

#[test]
fn credential_date_must_match_request_date() {
    let mut req = signed();
    let auth = req.authorization().replace("/20240102/", "/20240101/");
    req.set("authorization", &auth);
    assert_eq!(
        req.verify(),
        Err(invalid_signature(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
             HTTP: '20240101' != '20240102', from '20240102T030405Z'."
        ))
    );
}

#[test]
fn expired_signature_is_rejected() {
    let req = signed();
    let now = t0() + Duration::from_secs(15 * 60 + 1);
    assert_eq!(
        req.verify_at(&Verifier::new("us-east-1"), now),
        Err(invalid_signature(
            "Signature expired: 20240102T030405Z is now earlier than 20240102T030406Z \
             (20240102T031906Z - 15 min.)"
        ))
    );
}

#[test]
fn future_signature_is_rejected() {
    let req = sdk_sign(Signing {
        time: t0() + Duration::from_secs(3600),
        ..Signing::default()
    });
    assert_eq!(
        req.verify(),
        Err(invalid_signature(
            "Signature not yet current: 20240102T040405Z is still later than 20240102T031905Z \
             (20240102T030405Z + 15 min.)"
        ))
    );
}

#[test]
fn unknown_access_key_is_unrecognized_client() {
    let mut req = signed();
    let auth = req.authorization().replace(AKID, "AKIDUNKNOWN");
    req.set("authorization", &auth);
    let err = req.verify().unwrap_err();
    assert_eq!(err.type_name(), "UnrecognizedClientException");
    assert_eq!(
        err.message(),
        "The security token included in the request is invalid."
    );
}

#[test]
fn unsigned_target_header_is_rejected() {
    let mut settings = SigningSettings::default();
    settings.excluded_headers = Some(vec!["x-amz-target".into()]);
    let req = sdk_sign(Signing {
        settings,
        ..Signing::default()
    });
    assert!(!req.authorization().contains("x-amz-target"));
    assert_eq!(
        req.verify(),
        Err(invalid_signature(
            "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization."
        ))
    );
}

#[test]
fn unsigned_host_or_date_is_rejected() {
    let auth = signed().authorization();
    let cases = [
        (
            "host;",
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ),
        (
            ";x-amz-date",
            "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.",
        ),
    ];
    for (remove, message) in cases {
        assert!(auth.contains(remove), "{auth}");
        let mut req = signed();
        req.set("authorization", &auth.replace(remove, ""));
        assert_eq!(req.verify(), Err(invalid_signature(message)));
    }
}

#[test]
fn unsigned_and_streaming_payloads_are_rejected() {
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let req = sdk_sign(Signing {
        settings,
        signable_body: Some(SignableBody::UnsignedPayload),
        ..Signing::default()
    });
    assert_eq!(req.headers["x-amz-content-sha256"], "UNSIGNED-PAYLOAD");
    assert_eq!(
        req.verify().unwrap_err().type_name(),
        "InvalidSignatureException"
    );

    let mut req = signed();
    req.set("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
    assert_eq!(
        req.verify().unwrap_err().type_name(),
        "InvalidSignatureException"
    );
}

#[test]
fn content_sha256_header_must_match_body() {
    let mut req = signed();
    req.set("x-amz-content-sha256", &"0".repeat(64));
    assert_eq!(
        req.verify(),
        Err(invalid_signature(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        ))
    );
}

// ---- rejected: missing or malformed ----

#[test]
fn missing_authorization_is_missing_authentication_token() {
    let mut req = signed();
    req.headers.remove("authorization");
    let err = req.verify().unwrap_err();
    assert_eq!(err.type_name(), "MissingAuthenticationTokenException");
    assert_eq!(
        err.qualified_type_name(),
        "com.amazon.coral.service#MissingAuthenticationTokenException"
    );
    assert_eq!(err.message(), "Request is missing Authentication Token");
    assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
}

#[test]
fn presigned_query_string_is_missing_authentication_token() {
    let req = Req {
        method: Method::POST,
        uri: "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abcd"
            .parse()
            .unwrap(),
        headers: HeaderMap::new(),
        body: Vec::new(),
    };
    assert_eq!(
        req.verify().unwrap_err().type_name(),
        "MissingAuthenticationTokenException"
    );
}

#[test]
fn garbage_authorization_lists_every_missing_part() {
    let mut req = signed();
    req.set("authorization", "foo");
    req.headers.remove("x-amz-date");
    assert_eq!(
        req.verify(),
        Err(AuthError::IncompleteSignature(
            "Authorization header requires 'Credential' parameter. Authorization header requires \
             'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. \
             Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. \
             Authorization=foo"
                .to_owned()
        ))
    );
}

#[test]
fn missing_date_is_incomplete_signature() {
    let mut req = signed();
    req.headers.remove("x-amz-date");
    let auth = req.authorization();
    assert_eq!(
        req.verify(),
        Err(AuthError::IncompleteSignature(format!(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. \
             Authorization={auth}"
        )))
    );
}

#[test]
fn malformed_credential_is_incomplete_signature() {
    let mut req = signed();
    let auth = req.authorization().replace("/aws4_request", "");
    req.set("authorization", &auth);
    assert_eq!(
        req.verify(),
        Err(AuthError::IncompleteSignature(
            "Credential must have exactly 5 slash-delimited elements, e.g. \
             keyid/date/region/service/term, got 'AKIDEXAMPLE/20240102/us-east-1/dynamodb'"
                .to_owned()
        ))
    );
}

#[test]
fn malformed_date_is_incomplete_signature() {
    let mut req = signed();
    req.set("x-amz-date", "2024-01-02T03:04:05Z");
    assert_eq!(
        req.verify(),
        Err(AuthError::IncompleteSignature(
            "Date must be in ISO-8601 'basic format'. Got '2024-01-02T03:04:05Z'. See \
             http://en.wikipedia.org/wiki/ISO_8601"
                .to_owned()
        ))
    );
}

#[test]
fn errors_never_contain_the_secret() {
    let mut req = signed();
    req.body.push(b' ');
    let err = req.verify().unwrap_err();
    assert!(!err.message().contains(SECRET));
    assert!(!format!("{err:?}").contains(SECRET));
    assert!(!format!("{:?}", SecretKey::new(SECRET.to_owned())).contains(SECRET));
}

// ---- no panics on any input ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_authorization_headers_never_panic(
        auth in "(AWS4-HMAC-SHA256 )?((Credential|SignedHeaders|Signature|X)=[ -~]{0,40}[, ]{0,3}){0,5}",
        raw in proptest::collection::vec(any::<u8>(), 0..120),
        date in "[0-9TZ:, a-zA-Z-]{0,24}",
    ) {
        let v = Verifier::new("us-east-1");
        for value in [auth.as_bytes(), raw.as_slice()] {
            let Ok(value) = HeaderValue::from_bytes(value) else { continue };
            let mut headers = HeaderMap::new();
            headers.insert("authorization", value);
            if let Ok(d) = HeaderValue::from_str(&date) {
                headers.insert("x-amz-date", d.clone());
                headers.insert("date", d);
            }
            headers.insert("host", HeaderValue::from_static(HOST));
            let uri: Uri = "/".parse().unwrap();
            let result = v.verify(&Method::POST, &uri, &headers, b"{}", t0(), &Keys);
            prop_assert!(result.is_err());
        }
    }

    #[test]
    fn arbitrary_paths_queries_and_header_values_never_panic(
        path in "/[!-~]{0,40}",
        value in proptest::collection::vec(any::<u8>(), 0..60),
    ) {
        let mut req = signed();
        if let Ok(uri) = path.parse::<Uri>() {
            req.uri = uri;
        }
        if let Ok(value) = HeaderValue::from_bytes(&value) {
            req.headers.append("x-amz-target", value);
        }
        let _ = req.verify();
    }
}
