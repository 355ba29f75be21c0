//! The record cipher: round trip, tamper detection, AAD and stream binding, nonce uniqueness.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on failure by design

use proptest::prelude::*;
use shoal_crypto::record::{RECORD_OVERHEAD, sealed_seq};
use shoal_crypto::{CryptoError, DataKey, RecordKey, RecordSealer, StreamId, open, seal};

#[test]
fn sealed_record_opens_to_its_plaintext_with_a_reader_derived_key() {
    let data_key = DataKey::generate().unwrap();
    let sealer = RecordSealer::new(&data_key).unwrap();
    let a = sealer.seal(b"index=1", b"first").unwrap();
    let b = sealer.seal(b"index=2", b"second").unwrap();
    assert_eq!(a.len(), RECORD_OVERHEAD + 5);
    assert_eq!((sealed_seq(&a).unwrap(), sealed_seq(&b).unwrap()), (0, 1));

    // A reader knows only the data key and the stream id stored in the segment header.
    let stream = StreamId::from_bytes(*sealer.stream_id().as_bytes());
    let reader = RecordKey::derive(&data_key, stream).unwrap();
    assert_eq!(open(&reader, b"index=1", &a).unwrap(), b"first");
    assert_eq!(open(&reader, b"index=2", &b).unwrap(), b"second");
}

#[test]
fn sealed_record_does_not_contain_the_plaintext() {
    let sealer = RecordSealer::new(&DataKey::generate().unwrap()).unwrap();
    let canary = b"CANARY-7f3e9a-secret-attribute-value";
    let sealed = sealer.seal(b"", canary).unwrap();
    assert!(!sealed.windows(8).any(|w| canary.windows(8).any(|c| c == w)));
}

#[test]
fn every_flipped_bit_position_is_detected_never_returned() {
    let sealer = RecordSealer::new(&DataKey::generate().unwrap()).unwrap();
    let sealed = sealer.seal(b"aad", b"hello record").unwrap();
    for i in 0..sealed.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = sealed.clone();
            bad[i] ^= bit;
            let err = open(sealer.key(), b"aad", &bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    CryptoError::Corrupt { .. } | CryptoError::Malformed { .. }
                ),
                "byte {i}: {err}"
            );
        }
    }
}

#[test]
fn wrong_aad_wrong_stream_or_wrong_data_key_is_corrupt() {
    let data_key = DataKey::generate().unwrap();
    let sealer = RecordSealer::new(&data_key).unwrap();
    let sealed = sealer.seal(b"index=7", b"payload").unwrap();
    let corrupt = |r: Result<Vec<u8>, CryptoError>| matches!(r, Err(CryptoError::Corrupt { .. }));
    assert!(corrupt(open(sealer.key(), b"index=8", &sealed)));
    let other_stream = RecordKey::derive(&data_key, StreamId::generate().unwrap()).unwrap();
    assert!(corrupt(open(&other_stream, b"index=7", &sealed)));
    let other_key = RecordKey::derive(&DataKey::generate().unwrap(), sealer.stream_id()).unwrap();
    assert!(corrupt(open(&other_key, b"index=7", &sealed)));
}

#[test]
fn truncated_records_and_unknown_versions_are_malformed() {
    let sealer = RecordSealer::new(&DataKey::generate().unwrap()).unwrap();
    let sealed = sealer.seal(b"", b"").unwrap();
    assert_eq!(sealed.len(), RECORD_OVERHEAD);
    assert_eq!(open(sealer.key(), b"", &sealed).unwrap(), b"");
    for len in 0..RECORD_OVERHEAD {
        assert!(matches!(
            open(sealer.key(), b"", &sealed[..len]),
            Err(CryptoError::Malformed { .. })
        ));
    }
    let mut v2 = sealed.clone();
    v2[0] = 2;
    assert!(matches!(
        open(sealer.key(), b"", &v2),
        Err(CryptoError::Malformed { .. })
    ));
    // Dropping the last byte of a longer record leaves a well-formed but unauthenticated record.
    let long = sealer.seal(b"", b"0123456789").unwrap();
    assert!(matches!(
        open(sealer.key(), b"", &long[..long.len() - 1]),
        Err(CryptoError::Corrupt { .. })
    ));
}

#[test]
fn a_record_cannot_be_moved_to_another_sequence_number() {
    let sealer = RecordSealer::new(&DataKey::generate().unwrap()).unwrap();
    let sealed = sealer.seal(b"", b"payload").unwrap();
    let mut moved = sealed.clone();
    moved[8] ^= 1; // seq 0 -> 1
    assert_eq!(sealed_seq(&moved).unwrap(), 1);
    assert!(matches!(
        open(sealer.key(), b"", &moved),
        Err(CryptoError::Corrupt { .. })
    ));
}

#[test]
fn explicit_seal_with_a_caller_sequence_round_trips() {
    let key =
        RecordKey::derive(&DataKey::generate().unwrap(), StreamId::generate().unwrap()).unwrap();
    let sealed = seal(&key, u64::MAX, b"a", b"b").unwrap();
    assert_eq!(sealed_seq(&sealed).unwrap(), u64::MAX);
    assert_eq!(open(&key, b"a", &sealed).unwrap(), b"b");
}

#[test]
fn one_sealer_never_repeats_a_sequence_number_across_threads() {
    let sealer = std::sync::Arc::new(RecordSealer::new(&DataKey::generate().unwrap()).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let sealer = std::sync::Arc::clone(&sealer);
            std::thread::spawn(move || {
                (0..250)
                    .map(|_| sealed_seq(&sealer.seal(b"", b"x").unwrap()).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..1000).collect::<Vec<u64>>());
}

#[test]
fn two_sealers_on_one_data_key_use_different_streams() {
    let data_key = DataKey::generate().unwrap();
    let a = RecordSealer::new(&data_key).unwrap();
    let b = RecordSealer::new(&data_key).unwrap();
    assert_ne!(a.stream_id(), b.stream_id());
    // Same seq and plaintext, different streams: different ciphertext (no keystream reuse).
    assert_ne!(a.seal(b"", b"same").unwrap(), b.seal(b"", b"same").unwrap());
}

proptest! {
    #[test]
    fn seal_open_round_trips_any_payload_and_aad(
        aad in proptest::collection::vec(any::<u8>(), 0..64),
        payload in proptest::collection::vec(any::<u8>(), 0..2048),
        seq in any::<u64>(),
    ) {
        let key = RecordKey::derive(&DataKey::from_bytes([7; 32]), StreamId::from_bytes([1; 16])).unwrap();
        let sealed = seal(&key, seq, &aad, &payload).unwrap();
        prop_assert_eq!(sealed.len(), payload.len() + RECORD_OVERHEAD);
        prop_assert_eq!(open(&key, &aad, &sealed).unwrap(), payload);
    }

    #[test]
    fn any_single_byte_change_is_rejected(
        aad in proptest::collection::vec(any::<u8>(), 0..32),
        payload in proptest::collection::vec(any::<u8>(), 0..256),
        pos in any::<prop::sample::Index>(),
        delta in 1u8..=255,
    ) {
        let key = RecordKey::derive(&DataKey::from_bytes([9; 32]), StreamId::from_bytes([2; 16])).unwrap();
        let mut sealed = seal(&key, 3, &aad, &payload).unwrap();
        let i = pos.index(sealed.len());
        sealed[i] = sealed[i].wrapping_add(delta);
        prop_assert!(open(&key, &aad, &sealed).is_err());
    }

    #[test]
    fn a_different_aad_is_rejected(
        aad in proptest::collection::vec(any::<u8>(), 0..32),
        other in proptest::collection::vec(any::<u8>(), 0..32),
        payload in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        prop_assume!(aad != other);
        let key = RecordKey::derive(&DataKey::from_bytes([5; 32]), StreamId::from_bytes([3; 16])).unwrap();
        let sealed = seal(&key, 0, &aad, &payload).unwrap();
        let is_corrupt = matches!(open(&key, &other, &sealed), Err(CryptoError::Corrupt { .. }));
        prop_assert!(is_corrupt);
    }
}
