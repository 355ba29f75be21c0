//! Wrapping data keys under master keys: round trip, context binding, tamper detection, rotation.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on failure by design

use shoal_crypto::{
    CryptoError, DataKey, KeyId, KeyProvider, MasterKeyState, MemoryKeyProvider, WrapAlgorithm,
    WrappedKey,
};

fn provider() -> MemoryKeyProvider {
    MemoryKeyProvider::new().unwrap()
}

#[test]
fn wrap_then_unwrap_returns_the_same_key() {
    let p = provider();
    let key = DataKey::generate().unwrap();
    let wrapped = p.wrap(&key, b"table-1").unwrap();
    assert_eq!(wrapped.key_id_of_wrapping_key, p.current_key_id());
    assert_eq!(wrapped.algorithm, WrapAlgorithm::Aes256Gcm);
    assert_eq!(p.unwrap(&wrapped, b"table-1").unwrap(), key);
}

#[test]
fn wrapped_key_does_not_contain_the_key_bytes() {
    let p = provider();
    let key = DataKey::generate().unwrap();
    let wrapped = p.wrap(&key, b"t").unwrap();
    assert!(
        !wrapped
            .ciphertext
            .windows(8)
            .any(|w| key.as_bytes().windows(8).any(|k| k == w))
    );
}

#[test]
fn wrapping_twice_gives_different_ciphertexts() {
    let p = provider();
    let key = DataKey::generate().unwrap();
    let a = p.wrap(&key, b"t").unwrap();
    let b = p.wrap(&key, b"t").unwrap();
    assert_ne!(a.ciphertext, b.ciphertext);
}

#[test]
fn unwrap_with_another_context_fails_as_corrupt() {
    let p = provider();
    let wrapped = p.wrap(&DataKey::generate().unwrap(), b"table-1").unwrap();
    assert!(matches!(
        p.unwrap(&wrapped, b"table-2"),
        Err(CryptoError::Corrupt { .. })
    ));
    assert!(matches!(
        p.unwrap(&wrapped, b""),
        Err(CryptoError::Corrupt { .. })
    ));
}

#[test]
fn unwrap_with_another_providers_master_key_fails() {
    let a = provider();
    let b = provider();
    let wrapped = a.wrap(&DataKey::generate().unwrap(), b"t").unwrap();
    // b does not know a's key id at all.
    let err = b.unwrap(&wrapped, b"t").unwrap_err();
    assert!(matches!(err, CryptoError::UnknownMasterKey { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(wrapped.key_id_of_wrapping_key.as_str())
    );
    // Relabelled with b's key id, authentication fails.
    let relabelled = WrappedKey {
        key_id_of_wrapping_key: b.current_key_id(),
        ..wrapped
    };
    assert!(matches!(
        b.unwrap(&relabelled, b"t"),
        Err(CryptoError::Corrupt { .. })
    ));
}

#[test]
fn every_flipped_ciphertext_byte_is_detected() {
    let p = provider();
    let wrapped = p.wrap(&DataKey::generate().unwrap(), b"t").unwrap();
    for i in 0..wrapped.ciphertext.len() {
        let mut bad = wrapped.clone();
        bad.ciphertext[i] ^= 0x01;
        assert!(
            matches!(p.unwrap(&bad, b"t"), Err(CryptoError::Corrupt { .. })),
            "flip at byte {i} not detected"
        );
    }
}

#[test]
fn truncated_or_extended_ciphertext_is_malformed() {
    let p = provider();
    let wrapped = p.wrap(&DataKey::generate().unwrap(), b"t").unwrap();
    let mut short = wrapped.clone();
    short.ciphertext.pop();
    assert!(matches!(
        p.unwrap(&short, b"t"),
        Err(CryptoError::Malformed { .. })
    ));
    let mut long = wrapped;
    long.ciphertext.push(0);
    assert!(matches!(
        p.unwrap(&long, b"t"),
        Err(CryptoError::Malformed { .. })
    ));
}

#[test]
fn wrapped_key_json_round_trip_and_shape() {
    let p = provider();
    let wrapped = p.wrap(&DataKey::generate().unwrap(), b"t").unwrap();
    let json = wrapped.to_json().unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["algorithm"], "AES-256-GCM");
    assert_eq!(value["key_id_of_wrapping_key"], p.current_key_id().as_str());
    assert!(value["ciphertext"].is_string());
    assert_eq!(WrappedKey::from_json(&json).unwrap(), wrapped);
    assert!(matches!(
        WrappedKey::from_json("{}"),
        Err(CryptoError::Malformed { .. })
    ));
}

#[test]
fn old_wraps_still_unwrap_after_rotation_until_retired() {
    let p = provider();
    let old_id = p.current_key_id();
    let key = DataKey::generate().unwrap();
    let old_wrap = p.wrap(&key, b"t").unwrap();

    let new_id = p.rotate().unwrap();
    assert_ne!(new_id, old_id);
    assert_eq!(p.current_key_id(), new_id);
    assert_eq!(p.unwrap(&old_wrap, b"t").unwrap(), key);
    let new_wrap = p.wrap(&key, b"t").unwrap();
    assert_eq!(new_wrap.key_id_of_wrapping_key, new_id);

    p.retire(&old_id).unwrap();
    let err = p.unwrap(&old_wrap, b"t").unwrap_err();
    assert!(matches!(err, CryptoError::RetiredMasterKey { .. }), "{err}");
    assert_eq!(p.unwrap(&new_wrap, b"t").unwrap(), key);

    let states: Vec<_> = p
        .master_keys()
        .into_iter()
        .map(|i| (i.id, i.state))
        .collect();
    assert_eq!(
        states,
        vec![
            (old_id.clone(), MasterKeyState::Retired),
            (new_id, MasterKeyState::Active)
        ]
    );
    // Retiring twice is a no-op.
    p.retire(&old_id).unwrap();
}

#[test]
fn the_current_master_key_cannot_be_retired() {
    let p = provider();
    let err = p.retire(&p.current_key_id()).unwrap_err();
    assert!(matches!(err, CryptoError::RetireCurrent { .. }));
    let err = p.retire(&KeyId::new("mk-nope")).unwrap_err();
    assert!(matches!(err, CryptoError::UnknownMasterKey { .. }));
}
