//! A linearizability checker for histories of single-key register operations.
//!
//! Clients record what they asked ([`Op`]), what they were told ([`Ret`]) and when
//! ([`Event::call`], [`Event::ret_at`]); [`check`] decides whether some total order of the
//! operations, consistent with real time (an operation that returned before another was called
//! comes first) and with the sequential semantics of a register, explains every result.
//!
//! The model is one register per key, initially absent (`None`):
//! - [`Op::Read`] returns the current value;
//! - [`Op::Write`] sets it (`None` = delete) and returns [`Ret::Ok`];
//! - [`Op::CondWrite`] is a compare-and-set: when the current value equals `expect` it sets
//!   `value` and returns [`Ret::Ok`], otherwise it changes nothing and returns
//!   [`Ret::CondFailed`].
//!
//! A [`Ret::Unknown`] result (timeout, 5xx, connection lost) means the client does not know
//! whether the operation happened: it may have taken effect at any point after its call (its
//! return time is infinite), or never. Unknown reads carry no information and are ignored.
//!
//! The search is Wing & Gong's, with Lowe's memoisation of (linearized set, state) pairs, as in
//! Porcupine; keys are checked independently (a register per key is a local property). Each key
//! gets a step budget ([`DEFAULT_STEP_BUDGET`], or [`check_with_budget`]); a search that exceeds
//! it returns [`CheckResult::Timeout`] instead of running for hours.
//!
//! ```
//! use shoal_lincheck::{check, CheckResult, Recorder, Op, Ret};
//!
//! let rec = Recorder::new();
//! let t = rec.begin(1, "k", Op::Write(Some("a".into())));
//! rec.end(t, Ret::Ok);
//! let t = rec.begin(2, "k", Op::Read);
//! rec.end(t, Ret::Read(Some("a".into())));
//! assert_eq!(check(&rec.history()), CheckResult::Ok);
//! ```

mod recorder;
mod search;

pub use recorder::{Recorder, Token};
pub use search::{DEFAULT_STEP_BUDGET, check, check_with_budget};

/// An operation on one key's register.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Reads the current value.
    Read,
    /// Sets the value (`None` deletes it).
    Write(Option<String>),
    /// Compare-and-set: sets `value` if the current value equals `expect` (`None` = absent).
    CondWrite {
        /// The value the register must hold for the write to happen.
        expect: Option<String>,
        /// The new value (`None` deletes).
        value: Option<String>,
    },
}

/// What the client was told.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ret {
    /// A read's result.
    Read(Option<String>),
    /// A write, or a conditional write whose condition held, succeeded.
    Ok,
    /// A conditional write's condition did not hold (nothing changed).
    CondFailed,
    /// The outcome is unknown (timeout, 5xx): the operation may or may not have happened.
    Unknown,
}

/// One completed (or abandoned) operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The client (a sequential process) that issued it.
    pub client: u64,
    /// The key (register) it applies to.
    pub key: String,
    /// What was asked.
    pub op: Op,
    /// What was answered.
    pub ret: Ret,
    /// When it was called (ns, any common origin).
    pub call: u64,
    /// When the answer arrived (ns); `u64::MAX` when `ret` is [`Ret::Unknown`].
    pub ret_at: u64,
}

/// The verdict of [`check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckResult {
    /// Every key's history is linearizable.
    Ok,
    /// This key's history is not linearizable (or malformed); `explanation` says why.
    Violation {
        /// The key.
        key: String,
        /// The longest linearizable prefix found and the operations that could not follow it.
        explanation: String,
    },
    /// The search for this key exceeded its step budget (no verdict).
    Timeout {
        /// The key.
        key: String,
    },
}
