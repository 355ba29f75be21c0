//! One segment file of the log: a plaintext header naming the segment's record stream, then
//! sealed records, each framed by its length.
//!
//! Layout: `magic "SHOALRLG" ‖ version (u32 LE) = 1 ‖ stream id (16)`, then per record
//! `length (u32 LE) ‖ sealed record` ([`shoal_crypto::record`]: AES-256-GCM under the stream's
//! HKDF subkey of the node key, nonce = the record's sequence number in the segment). Sequence
//! numbers start at 0 and are checked on reading, so a record cannot be dropped, repeated or
//! moved inside a segment without the read failing.
//!
//! A segment is created whole under a temporary name (header and first record, fsync'd) and then
//! renamed, so every segment file starts with a complete record. Only a segment's *last* record
//! can be torn by a crash (its frame runs past the end of the file, or the file ends inside it);
//! a record that fails to authenticate anywhere else is corruption and an error.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use shoal_crypto::{DataKey, RecordKey, RecordSealer, StreamId};

use crate::RaftError;

const MAGIC: &[u8; 8] = b"SHOALRLG";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + shoal_crypto::record::STREAM_ID_LEN;
/// Authenticated with every record: a record sealed for another purpose under the same stream
/// key would not open here.
const AAD: &[u8] = b"shoal/raft-log/v1";
/// A frame longer than this is corrupt, whatever its length field says.
const MAX_RECORD: usize = 1 << 30;
/// Suffix of a segment being created.
const TMP_SUFFIX: &str = ".tmp";

/// The file name of segment `n`: ordered as the numbers are.
fn name(n: u64) -> String {
    format!("{n:016x}.seg")
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> RaftError {
    // The node reports a log failure that says "full" as a full disk (`Cluster::stopped`).
    if e.kind() == std::io::ErrorKind::StorageFull {
        return RaftError::Log(format!("{what} {}: disk full ({e})", path.display()));
    }
    RaftError::Log(format!("{what} {}: {e}", path.display()))
}

/// Makes the directory's entries (created, renamed, removed files) durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), RaftError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("syncing the directory", dir, e))
}

/// The segments in `dir`, oldest first. Leftover temporary files of a creation a crash cut
/// short are removed (a segment counts only once renamed).
pub(super) fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, RaftError> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| io_err("listing", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_err("listing", dir, e))?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if file_name.ends_with(TMP_SUFFIX) {
            fs::remove_file(entry.path()).map_err(|e| io_err("removing", &entry.path(), e))?;
            continue;
        }
        if let Some(n) = file_name
            .strip_suffix(".seg")
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        {
            out.push((n, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The open segment records are appended to.
pub(super) struct Writer {
    file: File,
    sealer: RecordSealer,
    number: u64,
    path: PathBuf,
    len: u64,
    frame: Vec<u8>,
}

impl Writer {
    /// Creates segment `number` in `dir` holding `first` (a checkpoint) as its first record:
    /// written and fsync'd under a temporary name, then renamed and the directory synced.
    pub(super) fn create(
        dir: &Path,
        number: u64,
        key: &DataKey,
        first: &[u8],
    ) -> Result<Writer, RaftError> {
        let sealer = RecordSealer::new(key)
            .map_err(|e| RaftError::Log(format!("starting a log segment: {e}")))?;
        let path = dir.join(name(number));
        let tmp = dir.join(format!("{}{TMP_SUFFIX}", name(number)));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| io_err("creating", &tmp, e))?;
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(sealer.stream_id().as_bytes());
        file.write_all(&header)
            .map_err(|e| io_err("writing", &tmp, e))?;
        let mut w = Writer {
            file,
            sealer,
            number,
            path: path.clone(),
            len: HEADER_LEN as u64,
            frame: Vec::new(),
        };
        w.seal_frame(first)?;
        w.file
            .write_all(&w.frame)
            .map_err(|e| io_err("writing", &tmp, e))?;
        w.len += w.frame.len() as u64;
        w.file.sync_all().map_err(|e| io_err("syncing", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| io_err("renaming", &tmp, e))?;
        sync_dir(dir)?;
        Ok(w)
    }

    /// Appends one record and makes it durable (one `fdatasync`): its frame is written with one
    /// `write` call. On failure the segment is cut back to where the record started (best
    /// effort), so the write the caller reports as not applied does not come back at the next
    /// start; the store stops writing either way.
    pub(super) fn append(&mut self, plaintext: &[u8]) -> Result<(), RaftError> {
        self.seal_frame(plaintext)?;
        let result = self
            .file
            .write_all(&self.frame)
            .map_err(|e| io_err("appending to", &self.path, e))
            .and_then(|()| {
                self.file
                    .sync_data()
                    .map_err(|e| io_err("syncing", &self.path, e))
            });
        match result {
            Ok(()) => self.len += self.frame.len() as u64,
            Err(_) => {
                let _ = self
                    .file
                    .set_len(self.len)
                    .and_then(|()| self.file.sync_all());
            }
        }
        result
    }

    /// Seals `plaintext` into `self.frame`: its length, then the sealed record.
    fn seal_frame(&mut self, plaintext: &[u8]) -> Result<(), RaftError> {
        let sealed = self
            .sealer
            .seal(AAD, plaintext)
            .map_err(|e| RaftError::Log(format!("sealing a log record: {e}")))?;
        if sealed.len() > MAX_RECORD {
            return Err(RaftError::Log(format!(
                "a log record of {} bytes is over the {MAX_RECORD}-byte limit",
                sealed.len()
            )));
        }
        self.frame.clear();
        self.frame
            .extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        self.frame.extend_from_slice(&sealed);
        Ok(())
    }

    /// The segment's number.
    pub(super) fn number(&self) -> u64 {
        self.number
    }

    /// Bytes in the segment.
    pub(super) fn len(&self) -> u64 {
        self.len
    }
}

/// How reading a segment ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum End {
    /// At the end of the file, after a whole record.
    Clean,
    /// At a last record a crash cut short (`offset`: where it starts).
    Torn { offset: u64 },
}

/// Reads segment `path`, calling `record` with each record's plaintext in order.
pub(super) fn read(
    path: &Path,
    key: &DataKey,
    mut record: impl FnMut(&[u8]) -> Result<(), RaftError>,
) -> Result<End, RaftError> {
    let bytes = fs::read(path).map_err(|e| io_err("reading", path, e))?;
    let corrupt =
        |why: String| RaftError::Log(format!("corrupt log segment {}: {why}", path.display()));
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err(corrupt("not a Shoal log segment".to_string()));
    }
    let mut version = [0u8; 4];
    version.copy_from_slice(&bytes[8..12]);
    let version = u32::from_le_bytes(version);
    if version != VERSION {
        return Err(corrupt(format!(
            "segment format version {version}, this version reads {VERSION}"
        )));
    }
    let mut stream = [0u8; shoal_crypto::record::STREAM_ID_LEN];
    stream.copy_from_slice(&bytes[12..HEADER_LEN]);
    let rkey = RecordKey::derive(key, StreamId::from_bytes(stream))
        .map_err(|e| RaftError::Log(format!("deriving a log segment's key: {e}")))?;
    let mut at = HEADER_LEN;
    let mut seq = 0u64;
    // Every segment is created with its first record whole: only later ones can be torn, and a
    // first record that does not open means a wrong key or a damaged file.
    if bytes.len() == HEADER_LEN {
        return Err(corrupt("the segment has no record".to_string()));
    }
    while at < bytes.len() {
        let torn = if seq == 0 {
            Err(corrupt(
                "its first record is incomplete or does not authenticate (wrong key or damaged file)"
                    .to_string(),
            ))
        } else {
            Ok(End::Torn { offset: at as u64 })
        };
        let Some(len) = bytes.get(at..at + 4) else {
            return torn;
        };
        let mut l = [0u8; 4];
        l.copy_from_slice(len);
        let len = u32::from_le_bytes(l) as usize;
        let end = at + 4 + len;
        if end > bytes.len() {
            return torn;
        }
        let sealed = &bytes[at + 4..end];
        let opened = shoal_crypto::record::sealed_seq(sealed)
            .ok()
            .filter(|s| *s == seq)
            .and_then(|_| shoal_crypto::open(&rkey, AAD, sealed).ok());
        let Some(plain) = opened else {
            if end == bytes.len() {
                return torn;
            }
            return Err(corrupt(format!(
                "record {seq} at byte {at} does not authenticate (wrong key or changed bytes)"
            )));
        };
        record(&plain)?;
        seq += 1;
        at = end;
    }
    Ok(End::Clean)
}
