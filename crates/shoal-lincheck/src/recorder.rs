//! [`Recorder`]: collects a history from many concurrent clients.

use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use crate::{Event, Op, Ret};

/// Records operations as they are called and answered; cheap to clone (clones share the
/// history) and safe to use from many threads or tasks.
///
/// Times are nanoseconds since the recorder was created, taken under the recorder's lock, so the
/// call time of an operation is never later than the moment the client issued it (call
/// [`Recorder::begin`] just before sending) and the return time never earlier than its answer
/// (call [`Recorder::end`] just after receiving it).
#[derive(Clone, Debug)]
pub struct Recorder {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    origin: Instant,
    events: Vec<Event>,
}

/// An operation in flight, returned by [`Recorder::begin`] and consumed by [`Recorder::end`].
#[derive(Debug)]
#[must_use = "an operation that is never ended is recorded as Unknown"]
pub struct Token(usize);

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty recorder; its clock starts now.
    pub fn new() -> Recorder {
        Recorder {
            inner: Arc::new(Mutex::new(Inner {
                origin: Instant::now(),
                events: Vec::new(),
            })),
        }
    }

    /// Records the call of `op` on `key` by `client`. Until [`Recorder::end`] is called the
    /// operation's result is [`Ret::Unknown`].
    pub fn begin(&self, client: u64, key: &str, op: Op) -> Token {
        let mut inner = self.inner.lock();
        let call = nanos(inner.origin);
        inner.events.push(Event {
            client,
            key: key.to_string(),
            op,
            ret: Ret::Unknown,
            call,
            ret_at: u64::MAX,
        });
        Token(inner.events.len() - 1)
    }

    /// Records the answer of the operation `token` stands for. [`Ret::Unknown`] keeps its return
    /// time infinite (it may take effect at any later point).
    pub fn end(&self, token: Token, ret: Ret) {
        let mut inner = self.inner.lock();
        let now = nanos(inner.origin);
        if let Some(ev) = inner.events.get_mut(token.0) {
            ev.ret_at = if ret == Ret::Unknown {
                u64::MAX
            } else {
                now.max(ev.call)
            };
            ev.ret = ret;
        }
    }

    /// Everything recorded so far, in call order; operations not yet ended are [`Ret::Unknown`].
    pub fn history(&self) -> Vec<Event> {
        self.inner.lock().events.clone()
    }
}

fn nanos(origin: Instant) -> u64 {
    u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
}
