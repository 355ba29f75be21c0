//! Secrets are never printed and are zeroised: Debug redaction, no Display, ZeroizeOnDrop.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on failure by design

use std::sync::Arc;

use shoal_crypto::{
    DataKey, FileKeyProvider, KeyProvider, KeyRing, MemoryKeyProvider, RecordSealer, StreamId,
};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Every rendering of `bytes` someone might accidentally log.
fn renderings(bytes: &[u8]) -> Vec<String> {
    vec![
        hex::encode(bytes),
        hex::encode_upper(bytes),
        format!("{bytes:?}"),
        format!("{:?}", &bytes[..4]),
        bytes
            .iter()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    ]
}

fn assert_no_secret(text: &str, secret: &[u8]) {
    for r in renderings(secret) {
        assert!(!text.contains(&r), "secret rendered in {text:?}");
    }
}

#[test]
fn data_key_debug_is_redacted() {
    let key = DataKey::from_bytes([0xAB; 32]);
    let debug = format!("{key:?} {key:#?}");
    assert!(debug.contains("redacted"));
    assert_no_secret(&debug, key.as_bytes());
    let key = DataKey::generate().unwrap();
    assert_no_secret(&format!("{key:?}"), key.as_bytes());
}

#[test]
fn keyring_and_providers_debug_show_no_key_material() {
    let tmp = tempfile::tempdir().unwrap();
    let file = Arc::new(FileKeyProvider::open_or_create(tmp.path().join("k")).unwrap());
    let ring = KeyRing::open_in(file.clone(), &tmp.path().join("d")).unwrap();
    let (table_key, _) = ring.create_data_key("t").unwrap();
    let text = format!("{ring:?} {file:?} {:?}", MemoryKeyProvider::new().unwrap());
    assert_no_secret(&text, ring.node_key().as_bytes());
    assert_no_secret(&text, table_key.as_bytes());
    let sealer = RecordSealer::new(&table_key).unwrap();
    let text = format!("{sealer:?}");
    assert!(text.contains("StreamId"));
    assert_no_secret(&text, table_key.as_bytes());
}

#[test]
fn crypto_errors_never_contain_key_material() {
    let p = MemoryKeyProvider::new().unwrap();
    let key = DataKey::generate().unwrap();
    let mut wrapped = p.wrap(&key, b"t").unwrap();
    wrapped.ciphertext[20] ^= 1;
    let err = p.unwrap(&wrapped, b"t").unwrap_err();
    assert_no_secret(&format!("{err} {err:?}"), key.as_bytes());
}

#[test]
fn master_key_files_hold_the_key_only_in_the_key_directory() {
    // The wrapped node key in the data directory must not contain any master key file's key bytes.
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("k");
    let data = tmp.path().join("d");
    let ring = KeyRing::open_in(
        Arc::new(FileKeyProvider::open_or_create(&keys).unwrap()),
        &data,
    )
    .unwrap();
    let node_file = std::fs::read(data.join(shoal_crypto::NODE_KEY_FILE)).unwrap();
    let node_key = ring.node_key();
    assert!(
        !node_file
            .windows(8)
            .any(|w| node_key.as_bytes().windows(8).any(|k| k == w))
    );
    for r in renderings(node_key.as_bytes()) {
        assert!(!String::from_utf8_lossy(&node_file).contains(&r));
    }
}

#[test]
fn keys_are_zeroize_on_drop_and_zeroize_clears_them() {
    fn assert_zeroize_on_drop<T: ZeroizeOnDrop>() {}
    assert_zeroize_on_drop::<DataKey>();
    let mut key = DataKey::from_bytes([0x5A; 32]);
    key.zeroize();
    assert_eq!(key.as_bytes(), &[0u8; 32]);
    // Stream ids are public; they are not secrets and need no zeroising.
    let _ = StreamId::generate().unwrap();
    let _: Arc<dyn KeyProvider> = Arc::new(MemoryKeyProvider::new().unwrap());
}

/// A `tracing` writer that appends to a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn key_management_logs_events_but_never_key_bytes() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("k");
    let mut secrets: Vec<Vec<u8>> = Vec::new();
    tracing::subscriber::with_default(subscriber, || {
        let provider = Arc::new(FileKeyProvider::open_or_create(&keys).unwrap());
        let ring = KeyRing::open_in(provider.clone(), &tmp.path().join("d")).unwrap();
        let (table_key, _) = ring.create_data_key("t").unwrap();
        let first = provider.current_key_id();
        let first_bytes = std::fs::read(keys.join(format!("{first}.key"))).unwrap();
        secrets.push(first_bytes[8..40].to_vec());
        let second = provider.rotate().unwrap();
        let second_bytes = std::fs::read(keys.join(format!("{second}.key"))).unwrap();
        secrets.push(second_bytes[8..40].to_vec());
        provider.retire(&first).unwrap();
        // Loose permissions trigger a warning that names the file, not its content.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                keys.join(format!("{second}.key")),
                std::fs::Permissions::from_mode(0o644),
            )
            .unwrap();
        }
        FileKeyProvider::open(&keys).unwrap();
        secrets.push(table_key.as_bytes().to_vec());
        secrets.push(ring.node_key().as_bytes().to_vec());
    });
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("rotated master key"), "{log}");
    assert!(log.contains("retired master key"), "{log}");
    #[cfg(unix)]
    assert!(log.contains("accessible to group/others"), "{log}");
    for secret in &secrets {
        assert_no_secret(&log, secret);
    }
}
