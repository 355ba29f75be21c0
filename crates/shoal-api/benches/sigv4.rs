//! Micro-benchmarks of SigV4 verification ([`Verifier::verify`]) of requests signed by the
//! official `aws-sigv4` signer, prepared outside the timed loop: a small GetItem, a 1 KB
//! PutItem (the body hash grows with the body), and a GetItem on a fresh verifier (the
//! derived signing key is not cached yet, as for the first request of a key each day).
//!
//! `cargo bench -p shoal-api` (about 20 s). Results are recorded in docs/PERFORMANCE.md.

// Set-up outside the timed loops unwraps: a failure there is a broken bench, not a result.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, Method, Uri};
use shoal_api::sigv4::{KeyLookup, SecretKey, Verifier};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const HOST: &str = "127.0.0.1:8000";
const REGION: &str = "us-east-1";

struct Keys;
impl KeyLookup for Keys {
    fn secret_for(&self, id: &str) -> Option<SecretKey> {
        (id == AKID).then(|| SecretKey::new(SECRET.to_owned()))
    }
}

/// A signed request as the server receives it.
struct Req {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Req {
    fn verify(&self, verifier: &Verifier, now: SystemTime) -> bool {
        verifier
            .verify(
                &self.method,
                &self.uri,
                &self.headers,
                &self.body,
                now,
                &Keys,
            )
            .is_ok()
    }
}

/// 2024-01-02T03:04:05Z: requests are signed and verified at this instant.
fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_704_164_645)
}

/// Signs a POST of `body` to `target` the way the AWS SDKs do.
fn sdk_sign(target: &str, body: &[u8]) -> Req {
    let identity = Credentials::new(AKID, SECRET, None, None, "bench").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("dynamodb")
        .time(t0())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let headers = [
        ("host", HOST),
        ("content-type", "application/x-amz-json-1.0"),
        ("x-amz-target", target),
    ];
    let url = format!("http://{HOST}/");
    let signable = SignableRequest::new(
        "POST",
        url.clone(),
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut request = http::Request::builder().method("POST").uri(&url);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let mut request = request.body(()).unwrap();
    instructions.apply_to_request_http1x(&mut request);
    Req {
        method: Method::POST,
        uri: "/".parse().unwrap(),
        headers: request.headers().clone(),
        body: body.to_vec(),
    }
}

fn get_item() -> Req {
    sdk_sign(
        "DynamoDB_20120810.GetItem",
        br#"{"TableName":"bench","Key":{"pk":{"S":"user#0000012345"}}}"#,
    )
}

fn put_item_1k() -> Req {
    let body = serde_json::to_vec(&serde_json::json!({
        "TableName": "bench",
        "Item": {"pk": {"S": "user#0000012345"}, "payload": {"S": "x".repeat(1000)}}
    }))
    .unwrap();
    sdk_sign("DynamoDB_20120810.PutItem", &body)
}

fn verify(c: &mut Criterion) {
    let (get, put) = (get_item(), put_item_1k());
    let verifier = Verifier::new(REGION);
    assert!(get.verify(&verifier, t0()) && put.verify(&verifier, t0()));

    let mut g = c.benchmark_group("sigv4");
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify_get_item", |b| {
        b.iter(|| black_box(&get).verify(&verifier, t0()));
    });
    g.bench_function("verify_put_item_1k", |b| {
        b.iter(|| black_box(&put).verify(&verifier, t0()));
    });
    g.bench_function("verify_get_item_uncached_key", |b| {
        b.iter(|| black_box(&get).verify(&Verifier::new(REGION), t0()));
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = verify
}
criterion_main!(benches);
