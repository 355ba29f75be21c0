//! Leader leases: linearizable reads without a quorum round per read.
//!
//! A ReadIndex read costs the leader a heartbeat round to a quorum. Under a lease the leader
//! answers from its own commit index instead, because no other leader can exist yet:
//!
//! 1. **Renewal.** Every ReadIndex the leader runs in raft's safe mode (a client read while no
//!    lease holds, or a background renewal once half of the lease is gone) records the time it
//!    was issued, `start`. When a quorum acknowledged the heartbeat that carries it (raft then
//!    reports its read state), the lease runs until `start + duration`. Each acknowledging
//!    follower received that heartbeat after `start` and reset its election timer then.
//! 2. **Why no other leader can be elected before the lease ends.** With `check_quorum` (on in
//!    every group) a follower refuses votes and pre-votes while it heard from its leader less
//!    than `election_ticks` ticks ago, and a follower campaigns only after at least that many
//!    ticks without a leader. A new leader needs a vote from a quorum, which shares a node with
//!    the acknowledging quorum; that node votes only `election_ticks` of its ticks after `start`.
//!    The driver never runs ticks faster than its period (at most one catch-up tick after a
//!    stall), so those ticks span at least `(election_ticks - 2) * tick` of real time. The lease
//!    lasts `lease_ticks * tick * 9/10` with `lease_ticks <= election_ticks - 3` (one more tick
//!    of margin, and clocks whose rates differ by up to 10%: see [`Config::lease_ticks`]).
//! 3. **What ends a lease early.** Leadership or term changes, a leadership transfer (its
//!    target campaigns with a forced vote that ignores the followers' leases), and a membership
//!    change (the quorums change). A renewal started before such an event is discarded.
//! 4. **Memory lost.** A replica that restarted (or was created on this node by a message) no
//!    longer knows it heard from a leader, so it would grant a vote at once. It therefore drops
//!    vote and pre-vote requests for its first `election_ticks` ticks (a leader's forced
//!    transfer campaign still gets through: that leader gave up its lease before sending it).
//!
//! Under a valid lease a read on the leader, or a follower's read forwarded to it, is answered
//! with the leader's commit index (raft's lease-based read path, switched on for that one read
//! only). The deterministic simulator runs every read under these rules and checks the history
//! for linearizability across partitions, crashes and leader changes.
//!
//! [`Config::lease_ticks`]: crate::Config::lease_ticks

use std::sync::Arc;
use std::time::Instant;

/// A monotonic clock in milliseconds (the driver's real clock, or the simulator's virtual one).
pub trait Clock: Send + Sync {
    /// Milliseconds since an arbitrary fixed origin; never decreases.
    fn now_ms(&self) -> u64;
}

/// The process's monotonic clock.
pub(crate) struct MonotonicClock(Instant);

impl MonotonicClock {
    pub(crate) fn shared() -> Arc<dyn Clock> {
        Arc::new(MonotonicClock(Instant::now()))
    }
}

impl Clock for MonotonicClock {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// The context tag of a background renewal's ReadIndex (client reads carry their 8-byte id).
const RENEWAL_TAG: u8 = 0xA5;

/// A ReadIndex context of a background renewal: 9 bytes, so it never collides with a client
/// read's 8-byte id.
pub(crate) fn renewal_ctx(seq: u64) -> Vec<u8> {
    let mut ctx = Vec::with_capacity(9);
    ctx.push(RENEWAL_TAG);
    ctx.extend_from_slice(&seq.to_be_bytes());
    ctx
}

/// The renewal sequence number of a background renewal's context.
pub(crate) fn parse_renewal(ctx: &[u8]) -> Option<u64> {
    match ctx {
        [RENEWAL_TAG, rest @ ..] => <[u8; 8]>::try_from(rest).ok().map(u64::from_be_bytes),
        _ => None,
    }
}

/// One group's lease, as its leader sees it.
#[derive(Debug, Default)]
pub(crate) struct Lease {
    /// Lease length in ms; 0 disables leases.
    duration_ms: u64,
    /// The lease holds while `now < until_ms` in `term`.
    until_ms: u64,
    /// The term the lease was granted in.
    term: u64,
    /// Bumped by everything that ends a lease; a renewal started under an older one is void.
    generation: u64,
    /// The renewal in flight: its sequence number, start time, generation and term.
    renewal: Option<(u64, u64, u64, u64)>,
    /// Sequence of renewals.
    next_seq: u64,
}

impl Lease {
    pub(crate) fn new(duration_ms: u64) -> Lease {
        Lease {
            duration_ms,
            ..Lease::default()
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.duration_ms > 0
    }

    /// True when reads may be answered without a quorum round now, in `term`.
    pub(crate) fn holds(&self, now: u64, term: u64) -> bool {
        self.enabled() && term == self.term && now < self.until_ms
    }

    /// True when a renewal should start now: less than half of the lease is left (or none) and
    /// no renewal is in flight (one that has not completed within a lease's length is taken as
    /// lost: raft drops a ReadIndex it cannot serve).
    pub(crate) fn wants_renewal(&self, now: u64, term: u64) -> bool {
        if !self.enabled() {
            return false;
        }
        let in_flight = self
            .renewal
            .is_some_and(|(_, start, ..)| now < start.saturating_add(self.duration_ms));
        let half_left = self.holds(now, term) && self.until_ms - now >= self.duration_ms / 2;
        !in_flight && !half_left
    }

    /// Starts a renewal at `now` in `term`: returns its ReadIndex context.
    pub(crate) fn start_renewal(&mut self, now: u64, term: u64) -> Vec<u8> {
        self.next_seq += 1;
        self.renewal = Some((self.next_seq, now, self.generation, term));
        renewal_ctx(self.next_seq)
    }

    /// The renewal `seq` completed (a quorum acknowledged its heartbeat): extends the lease if it
    /// was started under the current generation and `term` is still this leader's.
    pub(crate) fn completed(&mut self, seq: u64, term: u64, is_leader: bool) {
        let Some((s, start, generation, started_term)) = self.renewal else {
            return;
        };
        if s != seq {
            return;
        }
        self.renewal = None;
        if is_leader && generation == self.generation && started_term == term {
            self.term = term;
            self.until_ms = self.until_ms.max(start + self.duration_ms);
        }
    }

    /// Ends the lease and voids the renewal in flight.
    pub(crate) fn end(&mut self) {
        self.generation += 1;
        self.until_ms = 0;
        self.renewal = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn granted(l: &mut Lease, now: u64, term: u64) {
        let ctx = l.start_renewal(now, term);
        l.completed(parse_renewal(&ctx).unwrap(), term, true);
    }

    #[test]
    fn a_renewal_holds_from_its_start_for_the_duration() {
        let mut l = Lease::new(600);
        assert!(!l.holds(0, 1));
        assert!(l.wants_renewal(0, 1));
        granted(&mut l, 1_000, 1);
        assert!(l.holds(1_000, 1));
        assert!(l.holds(1_599, 1));
        assert!(
            !l.holds(1_600, 1),
            "ends at start + duration, not completion + duration"
        );
        assert!(!l.holds(1_200, 2), "another term");
    }

    #[test]
    fn an_ended_lease_ignores_the_renewal_started_before() {
        let mut l = Lease::new(600);
        let ctx = l.start_renewal(1_000, 1);
        l.end();
        l.completed(parse_renewal(&ctx).unwrap(), 1, true);
        assert!(!l.holds(1_100, 1));
        let ctx = l.start_renewal(1_000, 1);
        l.completed(parse_renewal(&ctx).unwrap(), 2, true);
        assert!(!l.holds(1_100, 2), "started in term 1, completed in term 2");
        let ctx = l.start_renewal(1_000, 2);
        l.completed(parse_renewal(&ctx).unwrap(), 2, false);
        assert!(!l.holds(1_100, 2), "no longer leader");
    }

    #[test]
    fn renewal_starts_past_half_once_and_again_when_lost() {
        let mut l = Lease::new(600);
        granted(&mut l, 0, 3);
        assert!(!l.wants_renewal(200, 3));
        assert!(l.wants_renewal(301, 3));
        let ctx = l.start_renewal(301, 3);
        assert!(!l.wants_renewal(350, 3), "one in flight");
        assert!(l.wants_renewal(901, 3), "in flight for a whole lease: lost");
        l.completed(parse_renewal(&ctx).unwrap(), 3, true);
        assert!(l.holds(900, 3));
        assert!(parse_renewal(&7u64.to_be_bytes()).is_none());
    }

    #[test]
    fn disabled_lease_never_holds() {
        let mut l = Lease::new(0);
        assert!(!l.wants_renewal(0, 1));
        granted(&mut l, 0, 1);
        assert!(!l.holds(1, 1));
    }
}
