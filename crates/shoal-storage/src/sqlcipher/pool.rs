//! A small pool of reader connections, opened on demand.

use std::path::PathBuf;

use parking_lot::{Condvar, Mutex};
use rusqlite::Connection;
use zeroize::Zeroizing;

use super::open::open_keyed;
use crate::{Durability, StorageError};

/// Reader connections: WAL lets each read beside the writer. At most `max` are opened, lazily,
/// so an idle partition holds only its writer's file descriptors.
pub(crate) struct ReaderPool {
    path: PathBuf,
    durability: Durability,
    max: usize,
    state: Mutex<PoolState>,
    returned: Condvar,
}

struct PoolState {
    idle: Vec<Connection>,
    opened: usize,
    /// The key new connections are opened with; zeroised when replaced or dropped.
    key: Zeroizing<[u8; 32]>,
    /// While set (a rekey is running), no reader is handed out.
    paused: bool,
}

/// A borrowed reader; returned to the pool on drop.
pub(crate) struct Reader<'a> {
    pool: &'a ReaderPool,
    conn: Option<Connection>,
}

/// Readers are paused while this lives ([`ReaderPool::pause`]); dropping it resumes them.
pub(crate) struct Paused<'a> {
    pool: &'a ReaderPool,
}

impl ReaderPool {
    pub(crate) fn new(path: PathBuf, key: [u8; 32], durability: Durability, max: usize) -> Self {
        ReaderPool {
            path,
            durability,
            max: max.max(1),
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                opened: 0,
                key: Zeroizing::new(key),
                paused: false,
            }),
            returned: Condvar::new(),
        }
    }

    /// An idle reader, a newly opened one if fewer than `max` exist, or waits for one.
    pub(crate) fn get(&self) -> Result<Reader<'_>, StorageError> {
        let mut state = self.state.lock();
        loop {
            if state.paused {
                self.returned.wait(&mut state);
                continue;
            }
            if let Some(conn) = state.idle.pop() {
                return Ok(Reader {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if state.opened < self.max {
                state.opened += 1;
                let key = state.key.clone();
                drop(state);
                return match open_keyed(&self.path, &key, self.durability) {
                    Ok(conn) => Ok(Reader {
                        pool: self,
                        conn: Some(conn),
                    }),
                    Err(e) => {
                        self.state.lock().opened -= 1;
                        self.returned.notify_all();
                        Err(e)
                    }
                };
            }
            self.returned.wait(&mut state);
        }
    }

    /// An idle reader, if one is available right now (none while paused); never opens a
    /// connection or waits.
    pub(crate) fn try_get(&self) -> Option<Reader<'_>> {
        let mut state = self.state.lock();
        if state.paused {
            return None;
        }
        let conn = state.idle.pop()?;
        Some(Reader {
            pool: self,
            conn: Some(conn),
        })
    }

    /// Stops handing out readers, waits until every borrowed reader is back, and closes them all,
    /// so no connection keyed with the old key survives a rekey. Readers resume (opening new
    /// connections with [`Paused::set_key`]'s key) when the guard drops.
    pub(crate) fn pause(&self) -> Paused<'_> {
        let mut state = self.state.lock();
        // Another pause (only one rekey runs at a time: the caller holds the writer) is not
        // expected, but waiting for it keeps the invariant simple.
        while state.paused {
            self.returned.wait(&mut state);
        }
        state.paused = true;
        while state.idle.len() < state.opened {
            self.returned.wait(&mut state);
        }
        state.opened = 0;
        let idle = std::mem::take(&mut state.idle);
        drop(state);
        drop(idle);
        Paused { pool: self }
    }
}

impl ReaderPool {
    /// The key connections are opened with now.
    pub(crate) fn key(&self) -> Zeroizing<[u8; 32]> {
        self.state.lock().key.clone()
    }

    /// How new connections are opened.
    pub(crate) fn durability(&self) -> Durability {
        self.durability
    }
}

impl Paused<'_> {
    /// The key readers are opened with from now on.
    pub(crate) fn set_key(&self, key: &[u8; 32]) {
        *self.pool.state.lock().key = *key;
    }
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        self.pool.state.lock().paused = false;
        self.pool.returned.notify_all();
    }
}

impl Reader<'_> {
    pub(crate) fn conn(&self) -> Result<&Connection, StorageError> {
        self.conn.as_ref().ok_or_else(|| StorageError::Corrupt {
            context: "reader connection already returned".to_string(),
        })
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let paused = {
                let mut state = self.pool.state.lock();
                state.idle.push(conn);
                state.paused
            };
            if paused {
                // A pause waits for every reader to come back: wake it (and the readers
                // waiting behind it, which go back to sleep).
                self.pool.returned.notify_all();
            } else {
                // Only readers wait: one returned connection serves one of them.
                self.pool.returned.notify_one();
            }
        }
    }
}
