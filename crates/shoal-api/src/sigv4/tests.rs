//! Unit tests against the worked example of the AWS SigV4 documentation (IAM `ListUsers`).

use super::*;
use std::time::{Duration, UNIX_EPOCH};

struct DocKey;
impl KeyLookup for DocKey {
    fn secret_for(&self, id: &str) -> Option<SecretKey> {
        (id == "AKIDEXAMPLE")
            .then(|| SecretKey::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned()))
    }
}

const DOC_SIGNATURE: &str = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

fn doc_request(signature: &str) -> (Uri, HeaderMap) {
    let uri: Uri = "/?Action=ListUsers&Version=2010-05-08".parse().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
    );
    headers.insert("host", HeaderValue::from_static("iam.amazonaws.com"));
    headers.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date, Signature={signature}"
    );
    headers.insert("authorization", HeaderValue::from_str(&auth).unwrap());
    (uri, headers)
}

fn doc_now() -> SystemTime {
    UNIX_EPOCH
        + Duration::from_secs(
            u64::try_from(date::parse_amz_date("20150830T123600Z").unwrap().unix).unwrap(),
        )
}

#[test]
fn documented_canonical_request_hashes_as_documented() {
    let (uri, headers) = doc_request(DOC_SIGNATURE);
    let mut buf = Vec::new();
    canonical::write_canonical_request(
        &mut buf,
        &Method::GET,
        &uri,
        &headers,
        "content-type;host;x-amz-date",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
    assert_eq!(
        String::from_utf8(buf.clone()).unwrap(),
        "GET\n/\nAction=ListUsers&Version=2010-05-08\n\
         content-type:application/x-www-form-urlencoded; charset=utf-8\n\
         host:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
         content-type;host;x-amz-date\n\
         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        hex::encode(digest::digest(&digest::SHA256, &buf)),
        "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
    );
}

#[test]
fn documented_example_signature_verifies() {
    let verifier = Verifier::for_service("us-east-1", "iam");
    let (uri, headers) = doc_request(DOC_SIGNATURE);
    let identity = verifier
        .verify(&Method::GET, &uri, &headers, b"", doc_now(), &DocKey)
        .unwrap();
    assert_eq!(identity.access_key_id, "AKIDEXAMPLE");
    // A second verification is served from the signing-key cache and still agrees.
    assert!(
        verifier
            .verify(&Method::GET, &uri, &headers, b"", doc_now(), &DocKey)
            .is_ok()
    );
}

#[test]
fn documented_example_with_one_changed_signature_digit_is_rejected() {
    let verifier = Verifier::for_service("us-east-1", "iam");
    let bad = format!("{}{}", &DOC_SIGNATURE[..63], "8");
    let (uri, headers) = doc_request(&bad);
    let err = verifier
        .verify(&Method::GET, &uri, &headers, b"", doc_now(), &DocKey)
        .unwrap_err();
    assert_eq!(err, AuthError::signature_mismatch());
}

#[test]
fn secret_key_debug_is_redacted() {
    let s = SecretKey::new("wJalrXUtnFEMI".to_owned());
    assert_eq!(format!("{s:?}"), "SecretKey(<redacted>)");
    assert_eq!(s.expose(), "wJalrXUtnFEMI");
}

#[test]
fn precheck_needs_no_body_and_refuses_unknown_keys_and_stale_dates() {
    let verifier = Verifier::for_service("us-east-1", "iam");
    let (uri, headers) = doc_request(DOC_SIGNATURE);
    let pre = verifier.precheck(&headers, doc_now(), &DocKey).unwrap();
    assert_eq!(pre.access_key_id(), "AKIDEXAMPLE");
    assert!(format!("{pre:?}").contains("AKIDEXAMPLE"));
    let identity = verifier
        .verify_body(&pre, &Method::GET, &uri, &headers, b"")
        .unwrap();
    assert_eq!(identity.access_key_id, "AKIDEXAMPLE");
    // The signature covers the body: another body fails only at verify_body.
    assert_eq!(
        verifier
            .verify_body(&pre, &Method::GET, &uri, &headers, b"x")
            .unwrap_err(),
        AuthError::signature_mismatch()
    );

    struct NoKeys;
    impl KeyLookup for NoKeys {
        fn secret_for(&self, _: &str) -> Option<SecretKey> {
            None
        }
    }
    assert_eq!(
        verifier
            .precheck(&headers, doc_now(), &NoKeys)
            .unwrap_err()
            .type_name(),
        "UnrecognizedClientException"
    );
    let late = doc_now() + Duration::from_secs(16 * 60);
    assert_eq!(
        verifier
            .precheck(&headers, late, &DocKey)
            .unwrap_err()
            .type_name(),
        "InvalidSignatureException"
    );
    assert_eq!(
        verifier
            .precheck(&HeaderMap::new(), doc_now(), &DocKey)
            .unwrap_err()
            .type_name(),
        "MissingAuthenticationTokenException"
    );
}
