//! What a node answers on its cluster port, and the payload formats of each RPC kind.
//!
//! - `RAFT` (one-way): sender id (8 bytes BE) ‖ `GroupMessage::encode_batch`.
//! - `WRITE`: group (8 bytes BE) ‖ `wire::encode_command`. Reply: status byte 0 (applied) ‖
//!   index (8 bytes BE) ‖ `wire::encode_outcome`; 1 (not proposed here: retry); or 2 (refused
//!   by the partition's capacity buckets, not proposed) ‖ JSON `capacity::Throttled`.
//! - `META`: JSON `MetaCommand`. Reply: JSON `MetaReply`.
//! - `JOIN` (the only kind a peer without a cluster certificate may send): JSON `JoinRequest`,
//!   reply JSON `JoinResponse` (the new node's id, certificate and key, the CA, the members).
//! - `STATUS`: empty. Reply: JSON `LocalStatus`.
//! - `DATA`: a data-plane call forwarded to a node holding a replica (`crate::remote::codec`).
//! - `READ_UNITS`: read units a replica served, for the partitions' leader (`read_units.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use shoal_catalog::DataError;
use shoal_meta::{Member, MetaCommand, MetaResult};
use shoal_raft::{GroupId, GroupMessage, GroupStatus, NodeId};
use shoal_rpc::pki::unix_now;
use shoal_rpc::{JoinToken, RpcError};
use shoal_storage::{Applied, ApplyError};

use super::{Cluster, Routed, join_token, kind, sm::Reply};

/// A new node's request to join.
#[derive(Serialize, Deserialize)]
pub(crate) struct JoinRequest {
    /// The join token's secret, hex.
    pub(crate) secret: String,
    pub(crate) api_addr: String,
    pub(crate) cluster_addr: String,
    /// A random id of the joining process ([`shoal_meta::Member::instance`]).
    #[serde(default)]
    pub(crate) instance: String,
    /// The newest metadata format the joining node reads.
    #[serde(default = "format_one")]
    pub(crate) format: u64,
}

fn format_one() -> u64 {
    1
}

/// What a joining node gets: everything it needs to talk to the cluster.
#[derive(Serialize, Deserialize)]
pub(crate) struct JoinResponse {
    pub(crate) node_id: NodeId,
    pub(crate) cluster_id: String,
    pub(crate) ca_cert_pem: String,
    pub(crate) ca_key_pem: String,
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
    pub(crate) members: Vec<Member>,
}

/// The reply to a forwarded metadata change: `None` = not proposed there (retry).
#[derive(Serialize, Deserialize)]
struct MetaReply {
    done: Option<(u64, MetaResult)>,
}

/// One node's own view, merged by `GET /status`.
#[derive(Serialize, Deserialize, Clone)]
pub(crate) struct LocalStatus {
    pub(crate) node_id: NodeId,
    pub(crate) uptime_secs: u64,
    pub(crate) groups: Vec<GroupView>,
    /// The node's essential failure, if it has one (it is stopping: see `health.rs`).
    #[serde(default)]
    pub(crate) failure: Option<String>,
    /// On the metadata leader: how many seconds it has not heard from each other member (what
    /// dead-node detection goes by); empty on other nodes.
    #[serde(default)]
    pub(crate) silent_secs: BTreeMap<NodeId, u64>,
    /// The node's dead-node timeout.
    #[serde(default)]
    pub(crate) dead_node_timeout_secs: u64,
}

/// A group as one node sees it (`shoal_raft::GroupStatus`, over the wire).
#[derive(Serialize, Deserialize, Clone)]
pub(crate) struct GroupView {
    pub(crate) group: GroupId,
    pub(crate) role: String,
    pub(crate) leader: Option<NodeId>,
    pub(crate) term: u64,
    pub(crate) commit: u64,
    pub(crate) applied: u64,
    pub(crate) voters: Vec<NodeId>,
    pub(crate) learners: Vec<NodeId>,
    pub(crate) progress: Vec<(NodeId, u64)>,
    /// Items and bytes of the reporting node's replica (a partition group it holds).
    #[serde(default)]
    pub(crate) items: Option<u64>,
    #[serde(default)]
    pub(crate) bytes: Option<u64>,
    /// A snapshot is streaming into the reporting node's replica.
    #[serde(default)]
    pub(crate) catching_up: bool,
}

impl From<GroupStatus> for GroupView {
    fn from(g: GroupStatus) -> GroupView {
        GroupView {
            group: g.group,
            role: g.role,
            leader: g.leader,
            term: g.term,
            commit: g.commit,
            applied: g.applied,
            voters: g.voters,
            learners: g.learners,
            progress: g.progress,
            items: None,
            bytes: None,
            catching_up: false,
        }
    }
}

/// Whether a failed call certainly never reached the handler (safe to retry elsewhere).
pub(crate) fn not_sent(e: &RpcError) -> bool {
    matches!(e, RpcError::Connect { .. } | RpcError::Overloaded(_))
}

/// A forwarded write's reply: the entry's index and the command's outcome; `None` = retry.
pub(crate) type WriteReply = Option<(u64, Result<Applied, ApplyError>)>;

/// Decodes a forwarded write's reply; a write the leader throttled is
/// [`DataError::Throttled`].
pub(crate) fn decode_write_reply(b: &[u8]) -> Result<WriteReply, DataError> {
    let malformed = |e: &dyn std::fmt::Display| {
        DataError::Unavailable(format!("the leader's reply to a write was malformed: {e}"))
    };
    match b.first() {
        Some(1) => Ok(None),
        Some(0) if b.len() >= 9 => {
            let mut idx = [0u8; 8];
            idx.copy_from_slice(&b[1..9]);
            let outcome =
                shoal_storage::wire::decode_outcome(&b[9..]).map_err(|e| malformed(&e))?;
            Ok(Some((u64::from_be_bytes(idx), outcome)))
        }
        Some(2) => Err(DataError::Throttled(
            serde_json::from_slice(&b[1..]).map_err(|e| malformed(&e))?,
        )),
        _ => Err(malformed(&"unknown status")),
    }
}

pub(crate) fn decode_meta_reply(b: &[u8]) -> Result<Option<(u64, MetaResult)>, String> {
    serde_json::from_slice::<MetaReply>(b)
        .map(|r| r.done)
        .map_err(|e| e.to_string())
}

/// Answers the cluster port.
pub(crate) struct NodeRpc {
    pub(crate) cluster: Arc<Cluster>,
    /// The node's backend, for forwarded data-plane calls (weak: the backend owns the cluster).
    pub(crate) backend: std::sync::Weak<crate::backend::NodeBackend>,
}

fn be_u64(b: &[u8]) -> Option<(u64, &[u8])> {
    let (head, rest) = b.split_at_checked(8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(head);
    Some((u64::from_be_bytes(a), rest))
}

impl NodeRpc {
    async fn write(&self, payload: &[u8]) -> Result<Bytes, String> {
        let (group, data) = be_u64(payload).ok_or("malformed write request")?;
        let c = &self.cluster;
        if c.raft.leader(group) != Some(c.node_id) {
            return Ok(Bytes::from_static(&[1]));
        }
        let routed = match c.propose_write(group, data.to_vec()).await {
            Ok(routed) => routed,
            Err(DataError::Throttled(t)) => {
                let mut out = vec![2u8];
                serde_json::to_writer(&mut out, &t).map_err(|e| e.to_string())?;
                return Ok(out.into());
            }
            Err(e) => return Err(e.to_string()),
        };
        match routed {
            Routed::Done((index, Reply::Write(outcome))) => {
                let mut out = vec![0u8];
                out.extend_from_slice(&index.to_be_bytes());
                shoal_storage::wire::encode_outcome(&outcome, &mut out);
                Ok(out.into())
            }
            Routed::Done((_, Reply::Unavailable(why))) => Err(why),
            Routed::Done((_, Reply::Meta(_))) => Err("wrong reply kind".into()),
            Routed::Retry => Ok(Bytes::from_static(&[1])),
        }
    }

    async fn meta(&self, payload: &[u8]) -> Result<Bytes, String> {
        let c = &self.cluster;
        let group: GroupId = shoal_raft::META_GROUP;
        let done = if c.raft.leader(group) == Some(c.node_id) {
            match c
                .propose_local(group, payload.to_vec())
                .await
                .map_err(|e| e.to_string())?
            {
                Routed::Done((index, Reply::Meta(r))) => Some((index, r)),
                Routed::Done((_, Reply::Write(_) | Reply::Unavailable(_))) => {
                    return Err("wrong reply kind".into());
                }
                Routed::Retry => None,
            }
        } else {
            None
        };
        serde_json::to_vec(&MetaReply { done })
            .map(Bytes::from)
            .map_err(|e| e.to_string())
    }

    async fn join(&self, payload: &[u8]) -> Result<Bytes, String> {
        let req: JoinRequest =
            serde_json::from_slice(payload).map_err(|e| format!("malformed join request: {e}"))?;
        let c = &self.cluster;
        let secret = hex::decode(&req.secret).unwrap_or_default();
        // A token created through another member may not have reached this replica yet.
        let mut verdict = join_token::check(&c.meta(), &secret, unix_now());
        if verdict.is_err() && c.refresh_meta().await.is_ok() {
            verdict = join_token::check(&c.meta(), &secret, unix_now());
        }
        if let Err(refusal) = verdict {
            tracing::warn!(from = %req.cluster_addr, api_addr = %req.api_addr, reason = %refusal, "join refused");
            return Err(format!("join refused: {refusal}"));
        }
        let result = c
            .meta_propose(MetaCommand::AddMember {
                api_addr: req.api_addr.clone(),
                cluster_addr: req.cluster_addr.clone(),
                joined_at: crate::catalog::now_secs(),
                // Members still running an older binary apply a join by address alone: the
                // instance takes effect once every member reads format 2, so all apply alike.
                instance: if c.meta().write_format() >= 2 {
                    req.instance.clone()
                } else {
                    String::new()
                },
                format: req.format,
            })
            .await
            .map_err(|e| e.to_string())?;
        let MetaResult::NodeId(node_id) = result else {
            return Err(format!("join failed: {result:?}"));
        };
        let cert = c.identity.ca.issue(node_id).map_err(|e| e.to_string())?;
        tracing::info!(node_id, cluster_addr = %req.cluster_addr, api_addr = %req.api_addr, "node joined");
        let resp = JoinResponse {
            node_id,
            cluster_id: c.identity.cluster_id.clone(),
            ca_cert_pem: c.identity.ca.cert_pem.clone(),
            ca_key_pem: c.identity.ca.key_pem.clone(),
            cert_pem: cert.cert_pem,
            key_pem: cert.key_pem,
            members: c.meta().members.values().cloned().collect(),
        };
        serde_json::to_vec(&resp)
            .map(Bytes::from)
            .map_err(|e| e.to_string())
    }

    pub(crate) fn local_status(c: &Cluster) -> LocalStatus {
        LocalStatus {
            node_id: c.node_id,
            uptime_secs: c.started.elapsed().as_secs(),
            groups: c
                .raft
                .status()
                .into_iter()
                .map(|g| {
                    let mut view = GroupView::from(g);
                    if let Some((items, bytes)) = c.snapshots.replica_stats(view.group) {
                        view.items = Some(items);
                        view.bytes = Some(bytes);
                    }
                    view.catching_up = c.snapshots.downloading(view.group);
                    view
                })
                .collect(),
            failure: c.fail_stop.current().map(|f| f.to_string()),
            silent_secs: c
                .liveness
                .silences(
                    c.meta()
                        .members
                        .keys()
                        .copied()
                        .filter(|id| *id != c.node_id),
                )
                .into_iter()
                .map(|(id, d)| (id, d.as_secs()))
                .collect(),
            dead_node_timeout_secs: c.liveness.dead_after.as_secs(),
        }
    }
}

#[async_trait::async_trait]
impl shoal_rpc::Handler for NodeRpc {
    async fn call(&self, kind: u32, payload: Bytes) -> Result<Bytes, String> {
        match kind {
            kind::WRITE => self.write(&payload).await,
            kind::META => self.meta(&payload).await,
            kind::JOIN => self.join(&payload).await,
            kind::STATUS => serde_json::to_vec(&Self::local_status(&self.cluster))
                .map(Bytes::from)
                .map_err(|e| e.to_string()),
            kind::READ_UNITS => super::read_units::serve(&self.cluster, &payload),
            kind::DATA => match self.backend.upgrade() {
                Some(backend) => backend.serve_data_call(&payload).await.map(Bytes::from),
                None => Err("the node is stopping".to_string()),
            },
            kind::SNAPSHOT_CHUNK => {
                let cluster = Arc::clone(&self.cluster);
                tokio::task::spawn_blocking(move || {
                    cluster.snapshots.serve_chunk(&cluster, &payload)
                })
                .await
                .map_err(|e| e.to_string())?
            }
            other => Err(format!("unknown request kind {other}")),
        }
    }

    fn oneway(&self, kind: u32, payload: Bytes) {
        if kind != kind::RAFT {
            return;
        }
        let Some((from, rest)) = be_u64(&payload) else {
            return;
        };
        // A removed member's messages are dropped: it has no say in any group any more.
        if self.cluster.meta.read().removed_members.contains(&from) {
            return;
        }
        self.cluster.liveness.heard(from);
        match GroupMessage::decode_batch(rest) {
            Ok(msgs) => {
                // Snapshot offers wait for their data to be pulled (see `snapshot.rs`).
                let (offers, msgs): (Vec<_>, Vec<_>) = msgs.into_iter().partition(|m| {
                    m.msg.get_msg_type() == shoal_raft::MessageType::MsgSnapshot
                        && super::snapshot::is_offer(m.msg.get_snapshot().get_data())
                });
                for m in offers {
                    self.cluster.snapshots.inbound(&self.cluster, from, m);
                }
                if !msgs.is_empty() {
                    self.cluster.raft.step(from, msgs);
                }
            }
            Err(e) => tracing::warn!(from, error = %e, "undecodable raft messages dropped"),
        }
    }

    async fn unauthenticated_call(&self, kind: u32, payload: Bytes) -> Result<Bytes, String> {
        if kind == kind::JOIN {
            self.join(&payload).await
        } else {
            Err("this request needs a cluster certificate".into())
        }
    }
}

/// Asks the member at `addr` to let this node join, with `token`.
pub(crate) async fn request_join(
    addr: &str,
    token: &JoinToken,
    api_addr: String,
    cluster_addr: String,
) -> Result<JoinResponse, String> {
    let req = JoinRequest {
        secret: hex::encode(token.secret),
        api_addr,
        cluster_addr,
        instance: uuid::Uuid::new_v4().to_string(),
        format: shoal_meta::META_FORMAT_VERSION,
    };
    let payload = serde_json::to_vec(&req).map_err(|e| e.to_string())?;
    let reply = shoal_rpc::unauthenticated_call(
        addr,
        token.ca_fingerprint,
        kind::JOIN,
        payload.into(),
        std::time::Duration::from_secs(30),
    )
    .await
    .map_err(|e| e.to_string())?;
    serde_json::from_slice(&reply).map_err(|e| format!("malformed join response: {e}"))
}
