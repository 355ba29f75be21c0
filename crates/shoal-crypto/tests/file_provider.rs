//! FileKeyProvider: persistence, permissions, atomicity leftovers, and clear refusals naming the directory.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on failure by design

use std::fs;
use std::path::Path;

use shoal_crypto::{
    CryptoError, DataKey, FileKeyProvider, KeyProvider, MANIFEST_FILE, MasterKeyState,
};

fn key_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".key"))
        .collect();
    names.sort();
    names
}

fn assert_key_dir_error(err: CryptoError, dir: &Path, needle: &str) {
    let msg = err.to_string();
    assert!(matches!(err, CryptoError::KeyDir { .. }), "{msg}");
    assert!(
        msg.contains(&dir.display().to_string()),
        "message does not name the directory: {msg}"
    );
    assert!(msg.contains(needle), "message lacks {needle:?}: {msg}");
}

#[test]
fn first_open_creates_a_key_and_reopen_unwraps_old_wraps() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shoal-keys");
    let key = DataKey::generate().unwrap();
    let (id, wrapped) = {
        let p = FileKeyProvider::open_or_create(&dir).unwrap();
        (p.current_key_id(), p.wrap(&key, b"t").unwrap())
    };
    assert_eq!(key_files(&dir), vec![format!("{id}.key")]);
    assert!(dir.join(MANIFEST_FILE).exists());

    let p = FileKeyProvider::open(&dir).unwrap();
    assert_eq!(p.current_key_id(), id);
    assert_eq!(p.unwrap(&wrapped, b"t").unwrap(), key);
    let p2 = FileKeyProvider::open_or_create(&dir).unwrap();
    assert_eq!(p2.current_key_id(), id);
}

#[cfg(unix)]
#[test]
fn key_directory_is_0700_and_files_are_0600() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    let p = FileKeyProvider::open_or_create(&dir).unwrap();
    p.rotate().unwrap();
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}

#[test]
fn manifest_lists_keys_with_state_and_creation_time() {
    let tmp = tempfile::tempdir().unwrap();
    let p = FileKeyProvider::open_or_create(tmp.path()).unwrap();
    let first = p.current_key_id();
    let second = p.rotate().unwrap();
    p.retire(&first).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(tmp.path().join(MANIFEST_FILE)).unwrap()).unwrap();
    assert_eq!(manifest["current"], second.as_str());
    assert_eq!(manifest["keys"][0]["id"], first.as_str());
    assert_eq!(manifest["keys"][0]["state"], "retired");
    assert!(manifest["keys"][0]["retired_at"].is_u64());
    assert_eq!(manifest["keys"][1]["state"], "active");
    assert!(manifest["keys"][1]["created_at"].as_u64().unwrap() > 1_600_000_000);
}

#[test]
fn rotation_and_retirement_persist_across_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let key = DataKey::generate().unwrap();
    let p = FileKeyProvider::open_or_create(dir).unwrap();
    let first = p.current_key_id();
    let old_wrap = p.wrap(&key, b"t").unwrap();
    let second = p.rotate().unwrap();
    drop(p);

    let p = FileKeyProvider::open(dir).unwrap();
    assert_eq!(p.current_key_id(), second);
    assert_eq!(p.unwrap(&old_wrap, b"t").unwrap(), key);
    let new_wrap = p.wrap(&key, b"t").unwrap();
    p.retire(&first).unwrap();
    assert_eq!(key_files(dir), vec![format!("{second}.key")]);
    drop(p);

    let p = FileKeyProvider::open(dir).unwrap();
    let err = p.unwrap(&old_wrap, b"t").unwrap_err();
    assert!(matches!(err, CryptoError::RetiredMasterKey { .. }), "{err}");
    assert!(err.to_string().contains(&dir.display().to_string()));
    assert_eq!(p.unwrap(&new_wrap, b"t").unwrap(), key);
    let states: Vec<_> = p.master_keys().into_iter().map(|i| i.state).collect();
    assert_eq!(
        states,
        vec![MasterKeyState::Retired, MasterKeyState::Active]
    );
}

#[test]
fn open_refuses_a_missing_directory_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("absent");
    assert_key_dir_error(
        FileKeyProvider::open(&dir).unwrap_err(),
        &dir,
        "does not exist",
    );
}

#[test]
fn open_refuses_an_empty_directory_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    assert_key_dir_error(
        FileKeyProvider::open(tmp.path()).unwrap_err(),
        tmp.path(),
        "no keys.json",
    );
}

#[test]
fn open_refuses_a_corrupt_manifest_naming_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    FileKeyProvider::open_or_create(tmp.path()).unwrap();
    fs::write(
        tmp.path().join(MANIFEST_FILE),
        b"{\"format\": \"shoal-keys\", garbage",
    )
    .unwrap();
    assert_key_dir_error(
        FileKeyProvider::open(tmp.path()).unwrap_err(),
        tmp.path(),
        "keys.json is corrupt",
    );
    // open_or_create must not paper over it with new keys.
    assert_key_dir_error(
        FileKeyProvider::open_or_create(tmp.path()).unwrap_err(),
        tmp.path(),
        "keys.json is corrupt",
    );
}

#[test]
fn open_refuses_a_manifest_of_another_version_or_format() {
    let tmp = tempfile::tempdir().unwrap();
    FileKeyProvider::open_or_create(tmp.path()).unwrap();
    let path = tmp.path().join(MANIFEST_FILE);
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, text.replace("\"version\": 1", "\"version\": 99")).unwrap();
    assert_key_dir_error(
        FileKeyProvider::open(tmp.path()).unwrap_err(),
        tmp.path(),
        "version 99",
    );
    fs::write(&path, text.replace("\"shoal-keys\"", "\"other\"")).unwrap();
    assert_key_dir_error(
        FileKeyProvider::open(tmp.path()).unwrap_err(),
        tmp.path(),
        "format",
    );
}

#[test]
fn open_refuses_a_manifest_whose_current_key_is_unknown() {
    let tmp = tempfile::tempdir().unwrap();
    let p = FileKeyProvider::open_or_create(tmp.path()).unwrap();
    let id = p.current_key_id();
    let path = tmp.path().join(MANIFEST_FILE);
    let text = fs::read_to_string(&path).unwrap();
    fs::write(
        &path,
        text.replacen(
            &format!("\"current\": \"{id}\""),
            "\"current\": \"mk-0\"",
            1,
        ),
    )
    .unwrap();
    assert_key_dir_error(
        FileKeyProvider::open(tmp.path()).unwrap_err(),
        tmp.path(),
        "mk-0",
    );
}

#[test]
fn open_refuses_a_missing_key_file_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let id = FileKeyProvider::open_or_create(tmp.path())
        .unwrap()
        .current_key_id();
    fs::remove_file(tmp.path().join(format!("{id}.key"))).unwrap();
    assert_key_dir_error(
        FileKeyProvider::open(tmp.path()).unwrap_err(),
        tmp.path(),
        &format!("{id}.key listed in keys.json is missing"),
    );
}

#[test]
fn open_refuses_a_corrupt_key_file_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let id = FileKeyProvider::open_or_create(tmp.path())
        .unwrap()
        .current_key_id();
    let path = tmp.path().join(format!("{id}.key"));
    let mut bytes = fs::read(&path).unwrap();
    bytes[12] ^= 0x80;
    fs::write(&path, &bytes).unwrap();
    assert_key_dir_error(
        FileKeyProvider::open(tmp.path()).unwrap_err(),
        tmp.path(),
        &format!("{id}.key is corrupt"),
    );
    fs::write(&path, &bytes[..10]).unwrap();
    assert_key_dir_error(
        FileKeyProvider::open(tmp.path()).unwrap_err(),
        tmp.path(),
        "is corrupt",
    );
}

#[test]
fn key_files_without_a_manifest_are_refused_not_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let id = FileKeyProvider::open_or_create(tmp.path())
        .unwrap()
        .current_key_id();
    fs::remove_file(tmp.path().join(MANIFEST_FILE)).unwrap();
    assert_key_dir_error(
        FileKeyProvider::open_or_create(tmp.path()).unwrap_err(),
        tmp.path(),
        "restore keys.json",
    );
    assert!(tmp.path().join(format!("{id}.key")).exists());
}

#[test]
fn a_non_empty_foreign_directory_is_not_turned_into_a_key_directory() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("README"), b"hello").unwrap();
    assert_key_dir_error(
        FileKeyProvider::open_or_create(tmp.path()).unwrap_err(),
        tmp.path(),
        "not a Shoal key directory",
    );
}

#[test]
fn reopen_finishes_interrupted_writes_and_retirements() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let p = FileKeyProvider::open_or_create(dir).unwrap();
    let first = p.current_key_id();
    p.rotate().unwrap();
    let first_file = fs::read(dir.join(format!("{first}.key"))).unwrap();
    p.retire(&first).unwrap();
    drop(p);
    // Simulate a crash after the manifest update but before the file removal, plus a torn temp file.
    fs::write(dir.join(format!("{first}.key")), &first_file).unwrap();
    fs::write(dir.join(".keys.json.tmp"), b"{partial").unwrap();
    FileKeyProvider::open(dir).unwrap();
    assert!(!dir.join(format!("{first}.key")).exists());
    assert!(!dir.join(".keys.json.tmp").exists());
}

#[test]
fn a_different_key_directory_cannot_unwrap_and_says_where_it_looked() {
    let tmp = tempfile::tempdir().unwrap();
    let a = FileKeyProvider::open_or_create(tmp.path().join("a")).unwrap();
    let b_dir = tmp.path().join("b");
    let b = FileKeyProvider::open_or_create(&b_dir).unwrap();
    let wrapped = a.wrap(&DataKey::generate().unwrap(), b"t").unwrap();
    let err = b.unwrap(&wrapped, b"t").unwrap_err();
    assert!(matches!(err, CryptoError::UnknownMasterKey { .. }), "{err}");
    assert!(
        err.to_string().contains(&b_dir.display().to_string()),
        "{err}"
    );
}
