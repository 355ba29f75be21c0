//! Durable file operations for key material: atomic replace (temp file, fsync, rename, fsync directory) with
//! owner-only permissions.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::CryptoError;

/// Permissions of key files and manifests: owner read/write only.
pub(crate) const FILE_MODE: u32 = 0o600;
/// Permissions of the key directory: owner only.
pub(crate) const DIR_MODE: u32 = 0o700;

/// Suffix of temporary files written before an atomic rename; leftovers are removed on open.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// Atomically replaces `dir/name` with `bytes`: the file either keeps its old content or has the new one,
/// even across a crash, and the new content is durable when this returns.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), CryptoError> {
    let tmp = dir.join(format!(".{name}{TMP_SUFFIX}"));
    let target = dir.join(name);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(CryptoError::io(&tmp, e)),
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    let mut file = options.open(&tmp).map_err(|e| CryptoError::io(&tmp, e))?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&tmp, &target));
    if let Err(e) = written {
        // Best effort: do not leave a partial temp file holding key material.
        let _ = fs::remove_file(&tmp);
        return Err(CryptoError::io(&target, e));
    }
    sync_dir(dir)
}

/// Removes `dir/name` (absent is fine) and makes the removal durable.
pub(crate) fn remove_durably(dir: &Path, name: &str) -> Result<(), CryptoError> {
    let path = dir.join(name);
    match fs::remove_file(&path) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CryptoError::io(path, e)),
    }
}

/// fsyncs a directory so renames and removals in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), CryptoError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| CryptoError::io(dir, e))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Creates `dir` (and missing parents) and restricts it to [`DIR_MODE`].
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), CryptoError> {
    fs::create_dir_all(dir).map_err(|e| CryptoError::io(dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
            .map_err(|e| CryptoError::io(dir, e))?;
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(())
}

/// The permission bits of `path` that let group or others in (0 when safe, or on non-Unix systems).
pub(crate) fn loose_mode_bits(path: &Path) -> Result<u32, CryptoError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::metadata(path).map_err(|e| CryptoError::io(path, e))?;
        Ok(meta.permissions().mode() & 0o077)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(0)
    }
}
