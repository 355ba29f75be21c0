//! Which members this node hears from, and dead-node detection.
//!
//! Every member holds a replica of the metadata group, so its leader exchanges Raft messages
//! (heartbeats at least) with every live member several times a second. Each node notes when
//! it last heard from each peer ([`Liveness::heard`], on every Raft message received). The
//! metadata leader declares a member dead ([`shoal_meta::MetaCommand::DeclareDead`]) once it has
//! not heard from it for the dead-node timeout, counted from when this node became the leader at
//! the earliest (a new leader gives every member the full timeout). Placement then replaces the
//! dead member's replicas on live members and removes it (see `shoal_meta`'s placement).
//!
//! A member is declared dead only when at least [`shoal_meta::REPLICATION_FACTOR`] other active
//! members are live, so that its replicas can be replaced: in a 3-node cluster a lost node stays
//! down (its partitions keep a quorum of two) until it comes back or is removed by hand.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use shoal_meta::MetaState;
use shoal_raft::NodeId;

/// How long a probe's answer about a peer is trusted.
const PROBE_FRESH: Duration = Duration::from_secs(1);

/// How long a probe waits for a peer's answer.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// The default dead-node timeout: long enough for a restart or a reboot, short enough that a
/// lost machine's partitions are back to three copies within minutes.
pub const DEFAULT_DEAD_NODE_TIMEOUT: Duration = Duration::from_secs(300);

/// When this node last heard from each peer.
pub(crate) struct Liveness {
    heard: Mutex<HashMap<NodeId, Instant>>,
    /// Since when this node leads the metadata group (`None`: it does not).
    leading_since: Mutex<Option<Instant>>,
    /// The last probe of each peer: when, and whether it answered.
    probes: Mutex<HashMap<NodeId, (Instant, bool)>>,
    /// Silence after which the metadata leader declares a member dead.
    pub(crate) dead_after: Duration,
}

impl Liveness {
    pub(crate) fn new(dead_after: Duration) -> Liveness {
        Liveness {
            heard: Mutex::default(),
            leading_since: Mutex::default(),
            probes: Mutex::default(),
            dead_after,
        }
    }

    /// Whether `id` is known to be reachable without asking it: a Raft message or a probe
    /// answer from it within the last second (`Some(true)`), a fresh probe it did not answer
    /// (`Some(false)`), else `None`.
    pub(crate) fn known_reachable(&self, id: NodeId) -> Option<bool> {
        if self
            .heard
            .lock()
            .get(&id)
            .is_some_and(|t| t.elapsed() < PROBE_FRESH)
        {
            return Some(true);
        }
        self.probes
            .lock()
            .get(&id)
            .filter(|(at, _)| at.elapsed() < PROBE_FRESH)
            .map(|(_, ok)| *ok)
    }

    /// Notes a probe's outcome.
    pub(crate) fn probed(&self, id: NodeId, answered: bool) {
        self.probes.lock().insert(id, (Instant::now(), answered));
    }

    /// Notes whether this node leads the metadata group; returns since when it does.
    pub(crate) fn set_leading(&self, leading: bool) -> Option<Instant> {
        let mut since = self.leading_since.lock();
        if !leading {
            *since = None;
        } else if since.is_none() {
            *since = Some(Instant::now());
        }
        *since
    }

    /// How long each of `ids` has been silent, if this node leads the metadata group (the
    /// silences dead-node detection goes by); empty otherwise.
    pub(crate) fn silences(&self, ids: impl Iterator<Item = NodeId>) -> Vec<(NodeId, Duration)> {
        let Some(since) = *self.leading_since.lock() else {
            return Vec::new();
        };
        ids.map(|id| (id, self.silent_for(id, since))).collect()
    }

    /// Notes a message from `id`.
    pub(crate) fn heard(&self, id: NodeId) {
        self.heard.lock().insert(id, Instant::now());
    }

    /// How long `id` has been silent, counting from `since` at the earliest.
    pub(crate) fn silent_for(&self, id: NodeId, since: Instant) -> Duration {
        let last = self
            .heard
            .lock()
            .get(&id)
            .map_or(since, |t| (*t).max(since));
        last.elapsed()
    }
}

/// The active member (not `me`) silent for longer than `timeout` that the metadata leader
/// declares dead next, if any, given each member's silence.
pub(crate) fn next_dead(
    meta: &MetaState,
    me: NodeId,
    silent: impl Fn(NodeId) -> Duration,
    timeout: Duration,
) -> Option<NodeId> {
    let active: Vec<NodeId> = meta.active_members().collect();
    let live = |id: NodeId| id == me || silent(id) <= timeout;
    active.iter().copied().find(|&id| {
        !live(id)
            && active.iter().filter(|&&o| o != id && live(o)).count()
                >= shoal_meta::REPLICATION_FACTOR
    })
}

/// The message for a group that has lost its quorum, if `unreachable` of its `voters` leave
/// fewer than a majority.
pub(crate) fn quorum_lost(group: u64, voters: &[NodeId], unreachable: &[NodeId]) -> Option<String> {
    let n = voters.len();
    if n == 0 || n - unreachable.len() > n / 2 {
        return None;
    }
    let what = if group == shoal_raft::META_GROUP {
        "the metadata group".to_string()
    } else {
        format!("partition group {group}")
    };
    Some(format!(
        "{what} has lost its quorum: {} of its {n} replicas are unreachable (nodes {unreachable:?}); retry once they are back",
        unreachable.len()
    ))
}

#[cfg(test)]
mod tests {
    use shoal_meta::{Member, MemberState, MetaCommand};

    use super::*;

    fn cluster(n: u64) -> MetaState {
        let mut s = MetaState::default();
        s.apply(MetaCommand::Init {
            cluster_id: "c".into(),
            first: Member {
                id: 1,
                api_addr: "a1".into(),
                cluster_addr: "c1".into(),
                joined_at: 0,
                state: MemberState::Active,
                instance: String::new(),
                format: 2,
            },
        });
        for i in 2..=n {
            s.apply(MetaCommand::AddMember {
                api_addr: format!("a{i}"),
                cluster_addr: format!("c{i}"),
                joined_at: 0,
                instance: format!("i{i}"),
                format: 2,
            });
        }
        s
    }

    const T: Duration = Duration::from_secs(10);

    fn silence(quiet: &'static [(NodeId, u64)]) -> impl Fn(NodeId) -> Duration {
        move |id| {
            Duration::from_secs(
                quiet
                    .iter()
                    .find(|(q, _)| *q == id)
                    .map_or(0, |(_, secs)| *secs),
            )
        }
    }

    #[test]
    fn a_member_silent_past_the_timeout_is_dead_when_others_can_take_its_replicas() {
        let s = cluster(4);
        assert_eq!(next_dead(&s, 1, silence(&[(3, 9)]), T), None);
        assert_eq!(next_dead(&s, 1, silence(&[(3, 11)]), T), Some(3));
        // Never the leader itself.
        assert_eq!(next_dead(&s, 3, silence(&[(3, 11)]), T), None);
    }

    #[test]
    fn no_member_is_dead_while_too_few_live_ones_could_replace_it() {
        // 3 nodes: the two others cannot make three copies.
        assert_eq!(next_dead(&cluster(3), 1, silence(&[(3, 60)]), T), None);
        // 4 nodes, two silent: only two live ones left.
        assert_eq!(
            next_dead(&cluster(4), 1, silence(&[(3, 60), (4, 60)]), T),
            None
        );
        // 5 nodes, two silent: three live ones; one at a time, lowest id first.
        assert_eq!(
            next_dead(&cluster(5), 1, silence(&[(3, 60), (4, 60)]), T),
            Some(3)
        );
    }

    #[test]
    fn dead_and_leaving_members_are_not_declared_again() {
        let mut s = cluster(5);
        s.apply(MetaCommand::DeclareDead { id: 3 });
        s.apply(MetaCommand::DecommissionMember { id: 4 });
        assert_eq!(
            next_dead(&s, 1, silence(&[(3, 60), (4, 60)]), T),
            None,
            "3 is dead already, 4 is leaving"
        );
    }

    #[test]
    fn a_quorum_is_lost_when_a_majority_of_voters_is_unreachable() {
        assert_eq!(quorum_lost(5, &[1, 2, 3], &[3]), None);
        let msg = quorum_lost(5, &[1, 2, 3], &[2, 3]).unwrap();
        assert!(
            msg.starts_with("partition group 5 has lost its quorum: 2 of its 3 replicas"),
            "{msg}"
        );
        assert!(
            quorum_lost(0, &[1, 2, 3, 4], &[3, 4])
                .unwrap()
                .starts_with("the metadata group")
        );
        assert_eq!(quorum_lost(0, &[1, 2, 3, 4, 5], &[4, 5]), None);
        assert_eq!(quorum_lost(7, &[1], &[]), None);
    }

    #[test]
    fn reachability_is_known_from_recent_messages_and_probes() {
        let l = Liveness::new(T);
        assert_eq!(l.known_reachable(3), None);
        l.probed(3, false);
        assert_eq!(l.known_reachable(3), Some(false));
        l.heard(3);
        assert_eq!(
            l.known_reachable(3),
            Some(true),
            "a message beats a failed probe"
        );
        l.probed(4, true);
        assert_eq!(l.known_reachable(4), Some(true));
    }

    #[test]
    fn silence_counts_from_the_later_of_the_last_message_and_since() {
        let l = Liveness::new(T);
        let long_ago = Instant::now() - Duration::from_secs(100);
        assert!(l.silent_for(7, long_ago) >= Duration::from_secs(99));
        l.heard(7);
        assert!(l.silent_for(7, long_ago) < Duration::from_secs(5));
        let now = Instant::now();
        assert!(l.silent_for(8, now) < Duration::from_secs(5));
    }
}
