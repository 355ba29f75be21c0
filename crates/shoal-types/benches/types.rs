//! Micro-benchmarks of the per-request data-model work: DynamoDB JSON decode and encode of a
//! 1 KB item, the binary storage codec, and the storage key encoding.
//!
//! `cargo bench -p shoal-types` (about 30 s). Results are recorded in docs/PERFORMANCE.md.

// Set-up outside the timed loops unwraps: a failure there is a broken bench, not a result.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shoal_types::codec::{decode_item, encode_item};
use shoal_types::json::{item_from_json, item_to_json};
use shoal_types::key::encode_key;
use shoal_types::{AttributeValue, Item, item_size, partition_hash};

/// A 1 KB item as a request carries it: a string key, a few scalars, a small map, a string set
/// and a 900-byte payload (the shape of `shoal bench` items plus some typical attributes).
fn item_json() -> Vec<u8> {
    let payload: String = (0..900)
        .map(|i| char::from(b'a' + u8::try_from(i % 26).unwrap()))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "pk": {"S": "user#0000012345"},
        "version": {"N": "17"},
        "price": {"N": "1234.5678"},
        "active": {"BOOL": true},
        "tags": {"SS": ["blue", "green", "red"]},
        "address": {"M": {
            "city": {"S": "Lisbon"},
            "zip": {"S": "1100-148"},
            "floor": {"N": "3"}
        }},
        "history": {"L": [{"N": "1"}, {"N": "2"}, {"S": "three"}]},
        "payload": {"S": payload}
    }))
    .unwrap()
}

fn item() -> Item {
    item_from_json(&serde_json::from_slice(&item_json()).unwrap()).unwrap()
}

fn json(c: &mut Criterion) {
    let bytes = item_json();
    let item = item();
    assert!((1000..=1100).contains(&item_size(&item)), "item is ~1 KB");
    let mut g = c.benchmark_group("json");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("decode_1k_item", |b| {
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_slice(black_box(&bytes)).unwrap();
            item_from_json(&v).unwrap()
        });
    });
    g.bench_function("encode_1k_item", |b| {
        b.iter(|| serde_json::to_vec(&item_to_json(black_box(&item))).unwrap());
    });
    g.finish();
}

fn codec(c: &mut Criterion) {
    let item = item();
    let mut encoded = Vec::new();
    encode_item(&item, &mut encoded);
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Bytes(encoded.len() as u64));
    g.bench_function("encode_1k_item", |b| {
        let mut out = Vec::with_capacity(2048);
        b.iter(|| {
            out.clear();
            encode_item(black_box(&item), &mut out);
            out.len()
        });
    });
    g.bench_function("decode_1k_item", |b| {
        b.iter(|| decode_item(black_box(&encoded)).unwrap());
    });
    g.finish();
}

fn key(c: &mut Criterion) {
    let pk = AttributeValue::S("user#0000012345".to_owned());
    let sk = AttributeValue::N("20261123.5".parse().unwrap());
    let mut g = c.benchmark_group("key");
    g.bench_function("partition_hash_and_encode_key_s", |b| {
        b.iter(|| encode_key(partition_hash(black_box(&pk)), &pk, None));
    });
    g.bench_function("encode_key_s_n", |b| {
        b.iter(|| encode_key(black_box(42), black_box(&pk), Some(black_box(&sk))));
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
    targets = json, codec, key
}
criterion_main!(benches);
