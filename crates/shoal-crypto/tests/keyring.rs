//! KeyRing: per-table data keys, the node key file, DeleteTable, master-key rotation with rewrap_all.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on failure by design

use std::sync::Arc;

use shoal_crypto::{
    CryptoError, FileKeyProvider, KeyProvider, KeyRing, MemoryKeyProvider, NODE_KEY_FILE,
    WrappedKey,
};

fn memory_ring() -> KeyRing {
    KeyRing::create(Arc::new(MemoryKeyProvider::new().unwrap()))
        .unwrap()
        .0
}

#[test]
fn created_table_key_is_served_from_the_cache_and_reloads_from_its_wrap() {
    let provider: Arc<dyn KeyProvider> = Arc::new(MemoryKeyProvider::new().unwrap());
    let (ring, node_wrap) = KeyRing::create(Arc::clone(&provider)).unwrap();
    let (key, wrapped) = ring.create_data_key("t1").unwrap();
    assert_eq!(*ring.data_key_for("t1").unwrap(), *key);
    assert_eq!(ring.loaded_tables(), vec!["t1".to_string()]);

    // A restarted node: reopen with the wrapped node key, load the table key from its catalog record.
    let ring2 = KeyRing::open(provider, &node_wrap).unwrap();
    assert_eq!(*ring2.node_key(), *ring.node_key());
    assert!(matches!(
        ring2.data_key_for("t1"),
        Err(CryptoError::NoDataKey { .. })
    ));
    assert_eq!(*ring2.load("t1", &wrapped).unwrap(), *key);
    assert_eq!(*ring2.data_key_for("t1").unwrap(), *key);
}

#[test]
fn each_table_gets_its_own_key_distinct_from_the_node_key() {
    let ring = memory_ring();
    let (a, _) = ring.create_data_key("a").unwrap();
    let (b, _) = ring.create_data_key("b").unwrap();
    assert_ne!(*a, *b);
    assert_ne!(*a, *ring.node_key());
}

#[test]
fn a_wrapped_key_cannot_be_loaded_for_another_table() {
    let ring = memory_ring();
    let (_, wrapped) = ring.create_data_key("a").unwrap();
    assert!(matches!(
        ring.load("b", &wrapped),
        Err(CryptoError::Corrupt { .. })
    ));
}

#[test]
fn creating_a_second_key_for_a_table_is_refused() {
    let ring = memory_ring();
    ring.create_data_key("a").unwrap();
    assert!(matches!(
        ring.create_data_key("a"),
        Err(CryptoError::DataKeyExists { .. })
    ));
}

#[test]
fn destroy_forgets_the_table_key() {
    let ring = memory_ring();
    ring.create_data_key("a").unwrap();
    assert!(ring.destroy("a"));
    assert!(!ring.destroy("a"));
    assert!(matches!(
        ring.data_key_for("a"),
        Err(CryptoError::NoDataKey { .. })
    ));
}

#[test]
fn rotation_rewraps_every_table_key_and_the_node_key_then_old_master_retires() {
    let provider: Arc<dyn KeyProvider> = Arc::new(MemoryKeyProvider::new().unwrap());
    let (ring, _) = KeyRing::create(Arc::clone(&provider)).unwrap();
    let old_master = provider.current_key_id();
    let mut stored: Vec<(String, WrappedKey)> = Vec::new();
    let mut keys = Vec::new();
    for i in 0..5 {
        let id = format!("table-{i}");
        let (key, wrapped) = ring.create_data_key(&id).unwrap();
        keys.push(key);
        stored.push((id, wrapped));
    }

    let new_master = provider.rotate().unwrap();
    let rewrapped = ring.rewrap_all(stored.clone()).unwrap();
    let node_wrap = ring.rewrap_node_key().unwrap();
    assert_eq!(node_wrap.key_id_of_wrapping_key, new_master);
    provider.retire(&old_master).unwrap();

    assert_eq!(rewrapped.len(), 5);
    let fresh = KeyRing::open(Arc::clone(&provider), &node_wrap).unwrap();
    for ((id, wrapped), key) in rewrapped.iter().zip(&keys) {
        assert_eq!(wrapped.key_id_of_wrapping_key, new_master);
        assert_eq!(*fresh.load(id, wrapped).unwrap(), **key, "{id}");
    }
    // The old wraps are dead once the old master key is retired.
    let (id, old) = &stored[0];
    let again = KeyRing::open(provider, &node_wrap).unwrap();
    assert!(matches!(
        again.load(id, old),
        Err(CryptoError::RetiredMasterKey { .. })
    ));
}

#[test]
fn rewrap_all_fails_as_a_whole_on_a_bad_entry() {
    let ring = memory_ring();
    let (_, good) = ring.create_data_key("a").unwrap();
    let result = ring.rewrap_all(vec![
        ("a".to_string(), good.clone()),
        ("wrong".to_string(), good),
    ]);
    assert!(matches!(result, Err(CryptoError::Corrupt { .. })));
}

#[test]
fn node_key_file_is_created_once_and_reused() {
    let tmp = tempfile::tempdir().unwrap();
    let keys_dir = tmp.path().join("keys");
    let data_dir = tmp.path().join("data");
    let node_key = {
        let provider = Arc::new(FileKeyProvider::open_or_create(&keys_dir).unwrap());
        KeyRing::open_in(provider, &data_dir).unwrap().node_key()
    };
    assert!(data_dir.join(NODE_KEY_FILE).exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data_dir.join(NODE_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let provider = Arc::new(FileKeyProvider::open(&keys_dir).unwrap());
    let ring = KeyRing::open_in(provider, &data_dir).unwrap();
    assert_eq!(*ring.node_key(), *node_key);
}

#[test]
fn starting_with_the_wrong_key_directory_fails_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    KeyRing::open_in(
        Arc::new(FileKeyProvider::open_or_create(tmp.path().join("right")).unwrap()),
        &data_dir,
    )
    .unwrap();
    let wrong = tmp.path().join("wrong");
    let err = KeyRing::open_in(
        Arc::new(FileKeyProvider::open_or_create(&wrong).unwrap()),
        &data_dir,
    )
    .unwrap_err();
    assert!(matches!(err, CryptoError::UnknownMasterKey { .. }), "{err}");
    assert!(
        err.to_string().contains(&wrong.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_garbled_node_key_file_is_reported_not_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let provider: Arc<dyn KeyProvider> =
        Arc::new(FileKeyProvider::open_or_create(tmp.path().join("keys")).unwrap());
    let data_dir = tmp.path().join("data");
    KeyRing::open_in(Arc::clone(&provider), &data_dir).unwrap();
    std::fs::write(data_dir.join(NODE_KEY_FILE), b"not json").unwrap();
    let err = KeyRing::open_in(provider, &data_dir).unwrap_err();
    assert!(matches!(err, CryptoError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains(NODE_KEY_FILE));
}

#[test]
fn data_key_rotation_serves_the_new_key_and_hands_back_the_old_one() {
    let provider: Arc<dyn KeyProvider> = Arc::new(MemoryKeyProvider::new().unwrap());
    let (ring, node_wrap) = KeyRing::create(Arc::clone(&provider)).unwrap();
    let (old_key, _) = ring.create_data_key("t").unwrap();
    let (new_key, new_wrap, returned_old) = ring.rotate_data_key("t").unwrap();
    assert_eq!(*returned_old, *old_key);
    assert_ne!(*new_key, *old_key);
    assert_eq!(*ring.data_key_for("t").unwrap(), *new_key);
    let restarted = KeyRing::open(provider, &node_wrap).unwrap();
    assert_eq!(*restarted.load("t", &new_wrap).unwrap(), *new_key);
    assert!(matches!(
        ring.rotate_data_key("absent"),
        Err(CryptoError::NoDataKey { .. })
    ));
}

#[test]
fn master_rotation_under_concurrent_wrap_and_unwrap_never_fails_a_request() {
    let tmp = tempfile::tempdir().unwrap();
    let provider: Arc<dyn KeyProvider> =
        Arc::new(FileKeyProvider::open_or_create(tmp.path()).unwrap());
    let (ring, _) = KeyRing::create(Arc::clone(&provider)).unwrap();
    let ring = Arc::new(ring);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|w| {
            let ring = Arc::clone(&ring);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let id = format!("w{w}-t{n}");
                    let (key, wrapped) = ring.create_data_key(&id).unwrap();
                    let reloaded = ring
                        .provider()
                        .unwrap(&wrapped, &shoal_crypto::table_context(&id));
                    assert_eq!(reloaded.unwrap(), *key);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut retired = Vec::new();
    for _ in 0..5 {
        let old = provider.current_key_id();
        provider.rotate().unwrap();
        retired.push(old);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let total: u32 = workers.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(total > 0);
    // The first master key plus five rotations, none retired yet.
    assert_eq!(provider.master_keys().len(), 6);
}
