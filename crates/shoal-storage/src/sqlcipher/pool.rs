//! A small pool of reader connections, opened on demand.

use std::path::PathBuf;

use parking_lot::{Condvar, Mutex};
use rusqlite::Connection;

use super::open::open_keyed;
use crate::{Durability, StorageError};

/// Reader connections: WAL lets each read beside the writer. At most `max` are opened, lazily,
/// so an idle partition holds only its writer's file descriptors.
pub(crate) struct ReaderPool {
    path: PathBuf,
    key: [u8; 32],
    durability: Durability,
    max: usize,
    state: Mutex<PoolState>,
    returned: Condvar,
}

struct PoolState {
    idle: Vec<Connection>,
    opened: usize,
}

/// A borrowed reader; returned to the pool on drop.
pub(crate) struct Reader<'a> {
    pool: &'a ReaderPool,
    conn: Option<Connection>,
}

impl ReaderPool {
    pub(crate) fn new(path: PathBuf, key: [u8; 32], durability: Durability, max: usize) -> Self {
        ReaderPool {
            path,
            key,
            durability,
            max: max.max(1),
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                opened: 0,
            }),
            returned: Condvar::new(),
        }
    }

    /// An idle reader, a newly opened one if fewer than `max` exist, or waits for one.
    pub(crate) fn get(&self) -> Result<Reader<'_>, StorageError> {
        let mut state = self.state.lock();
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(Reader {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if state.opened < self.max {
                state.opened += 1;
                drop(state);
                return match open_keyed(&self.path, &self.key, self.durability) {
                    Ok(conn) => Ok(Reader {
                        pool: self,
                        conn: Some(conn),
                    }),
                    Err(e) => {
                        self.state.lock().opened -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            self.returned.wait(&mut state);
        }
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
            self.pool.state.lock().idle.push(conn);
            self.pool.returned.notify_one();
        }
    }
}
