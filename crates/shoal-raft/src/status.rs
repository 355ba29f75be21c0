//! [`GroupStatus`]: what `shoal status` shows of a group.

use raft::StateRole;

use crate::group::Group;
use crate::{GroupId, NodeId};

/// One group as seen by this node.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GroupStatus {
    /// The group.
    pub group: GroupId,
    /// `Leader`, `Follower`, `Candidate` or `PreCandidate`.
    pub role: String,
    /// The leader known to this node.
    pub leader: Option<NodeId>,
    /// Current term.
    pub term: u64,
    /// Commit index.
    pub commit: u64,
    /// Last index applied to the state machine.
    pub applied: u64,
    /// Voters.
    pub voters: Vec<NodeId>,
    /// Learners.
    pub learners: Vec<NodeId>,
    /// `(node, matched index)` of every replica; only on the leader (empty elsewhere).
    pub progress: Vec<(NodeId, u64)>,
}

impl GroupStatus {
    pub(crate) fn of(g: &Group) -> GroupStatus {
        let raft = &g.node.raft;
        let role = match raft.state {
            StateRole::Leader => "Leader",
            StateRole::Follower => "Follower",
            StateRole::Candidate => "Candidate",
            StateRole::PreCandidate => "PreCandidate",
        };
        let cs = raft.prs().conf().to_conf_state();
        let mut progress: Vec<(NodeId, u64)> = if raft.state == StateRole::Leader {
            raft.prs()
                .iter()
                .map(|(id, pr)| (*id, pr.matched))
                .collect()
        } else {
            Vec::new()
        };
        progress.sort_unstable();
        GroupStatus {
            group: g.id,
            role: role.to_string(),
            leader: g.leader(),
            term: raft.term,
            commit: raft.raft_log.committed,
            applied: g.applied,
            voters: sorted(cs.voters),
            learners: sorted(cs.learners),
            progress,
        }
    }
}

fn sorted(mut v: Vec<NodeId>) -> Vec<NodeId> {
    v.sort_unstable();
    v
}
