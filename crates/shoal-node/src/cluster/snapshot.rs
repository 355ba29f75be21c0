//! Partition snapshots of any size, in bounded chunks.
//!
//! Raft sends a follower that is too far behind (its log was compacted away, or it is new) a
//! snapshot. Its data is not the partition but a small *offer*: a token, the leader's node id,
//! and the parts it holds (the base partition and, because each node feeds its GSI files from
//! its own base partition's outbox, every GSI partition of the table).
//!
//! - Leader ([`Snapshots::offer`], on the Raft driver thread between two applies): opens a
//!   consistent read view of the base partition, then of each GSI partition (in that order: a
//!   GSI view taken later holds at least what the base view's outbox no longer has), and keeps
//!   them in a session under the token. `SNAPSHOT_CHUNK` requests read about
//!   [`CHUNK_BYTES`] from a view ([`Snapshots::serve_chunk`]); a session unused for
//!   [`SESSION_IDLE`] is closed, and a request for an unknown session makes the group forget
//!   its snapshot, so the next offer is a new one.
//! - Follower ([`Snapshots::inbound`]): the message is held back from Raft while a task pulls
//!   every part, chunk by chunk (each retried up to [`CHUNK_RETRIES`] times), into staging files
//!   ([`shoal_storage::write_chunk`]). Then the message is stepped with a local descriptor in
//!   place of the offer, and the state machine's restore swaps the staged files in
//!   ([`Snapshots::install`]). A failed transfer is logged at warn level and dropped; the leader
//!   offers the snapshot again at the follower's next rejection. One transfer per group at a
//!   time.
//!
//! While a transfer runs the replica is marked not ready: eventually consistent reads through
//! this node first catch up with the leader or are refused (see `backend.rs`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use shoal_raft::{GroupId, GroupMessage, NodeId};
use shoal_storage::{Engine, Partition, ReadView, SnapshotPosition};

use super::{Cluster, kind};
use crate::gsi::{Gsi, Shipper};

/// Bytes per chunk: bounds the memory of a transfer on both sides.
pub(crate) const CHUNK_BYTES: usize = 1 << 20;
/// A session whose views nobody read for this long is closed (its read transactions pin the
/// leader's WAL).
pub(crate) const SESSION_IDLE: Duration = Duration::from_secs(120);
/// Attempts per chunk before the transfer is given up.
pub(crate) const CHUNK_RETRIES: u32 = 5;
/// One chunk request's deadline.
const CHUNK_TIMEOUT: Duration = Duration::from_secs(30);
/// Staged snapshots never installed (Raft refused the message as stale) are dropped after this.
const STAGED_TTL: Duration = Duration::from_secs(600);

const OFFER_MAGIC: &[u8; 4] = b"SSO2";
const LOCAL_MAGIC: &[u8; 4] = b"SSL2";

/// A part of a partition snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Base,
    Gsi(u32),
}

impl Part {
    fn encode(self, out: &mut Vec<u8>) {
        match self {
            Part::Base => out.push(0),
            Part::Gsi(id) => {
                out.push(1);
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
    }
}

/// What the leader's snapshot message carries.
struct Offer {
    token: u64,
    source: NodeId,
    parts: Vec<Part>,
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl Offer {
    fn encode(&self) -> Vec<u8> {
        let mut out = OFFER_MAGIC.to_vec();
        out.extend_from_slice(&self.token.to_be_bytes());
        out.extend_from_slice(&self.source.to_be_bytes());
        out.extend_from_slice(&(self.parts.len() as u32).to_be_bytes());
        for p in &self.parts {
            p.encode(&mut out);
        }
        out
    }

    fn decode(b: &[u8]) -> Option<Offer> {
        if !b.starts_with(OFFER_MAGIC) {
            return None;
        }
        let token = be_u64(b, 4)?;
        let source = be_u64(b, 12)?;
        let n = be_u32(b, 20)? as usize;
        let mut at = 24;
        let mut parts = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            match b.get(at)? {
                0 => {
                    parts.push(Part::Base);
                    at += 1;
                }
                1 => {
                    parts.push(Part::Gsi(be_u32(b, at + 1)?));
                    at += 5;
                }
                _ => return None,
            }
        }
        Some(Offer {
            token,
            source,
            parts,
        })
    }
}

/// Whether `data` (a Raft snapshot's) is an offer of a chunked snapshot.
pub(crate) fn is_offer(data: &[u8]) -> bool {
    data.starts_with(OFFER_MAGIC)
}

/// The local replica of a partition group, as the snapshot transfer needs it.
pub(crate) struct LocalReplica {
    pub(crate) partition: Weak<Partition>,
    pub(crate) gsis: Weak<RwLock<BTreeMap<u32, Arc<Gsi>>>>,
    pub(crate) shipper: Weak<Shipper>,
    /// Cleared while the replica catches up from a snapshot (see `backend.rs`).
    pub(crate) ready: Arc<AtomicBool>,
}

/// An outgoing snapshot: the views of its parts.
struct Session {
    group: GroupId,
    views: Vec<(Part, Box<dyn ReadView>)>,
    last_used: Instant,
}

/// A snapshot streamed in and waiting for Raft to install it.
struct Staged {
    group: GroupId,
    base: Box<dyn Engine>,
    gsis: Vec<(u32, Box<dyn Engine>)>,
    at: Instant,
    bytes: u64,
}

/// The node's snapshot transfers, both ways.
pub(crate) struct Snapshots {
    node_id: NodeId,
    sessions: Mutex<HashMap<u64, Arc<Mutex<Session>>>>,
    replicas: Mutex<HashMap<GroupId, LocalReplica>>,
    downloading: Mutex<HashSet<GroupId>>,
    staged: Mutex<HashMap<u64, Staged>>,
    next_staged: AtomicU64,
    metrics: Arc<crate::metrics::NodeMetrics>,
}

impl Snapshots {
    pub(crate) fn new(
        node_id: NodeId,
        metrics: Arc<crate::metrics::NodeMetrics>,
    ) -> Arc<Snapshots> {
        Arc::new(Snapshots {
            node_id,
            metrics,
            sessions: Mutex::default(),
            replicas: Mutex::default(),
            downloading: Mutex::default(),
            staged: Mutex::default(),
            next_staged: AtomicU64::new(1),
        })
    }

    /// The node's metrics (the state machines observe their applies there).
    pub(crate) fn metrics(&self) -> Arc<crate::metrics::NodeMetrics> {
        Arc::clone(&self.metrics)
    }

    /// Records the local replica of `group` (when its state machine is made).
    pub(crate) fn register(&self, group: GroupId, replica: LocalReplica) {
        self.replicas.lock().insert(group, replica);
    }

    /// Items and bytes of `group`'s local replica, if this node holds one.
    pub(crate) fn replica_stats(&self, group: GroupId) -> Option<(u64, u64)> {
        let partition = self.replicas.lock().get(&group)?.partition.upgrade()?;
        let stats = partition.stats();
        Some((stats.item_count, stats.size_bytes))
    }

    /// Whether a snapshot transfer into `group`'s local replica is running.
    pub(crate) fn downloading(&self, group: GroupId) -> bool {
        self.downloading.lock().contains(&group)
    }

    /// Leader: opens the views of a new snapshot of `group` and returns the offer Raft sends.
    pub(crate) fn offer(
        &self,
        group: GroupId,
        partition: &Partition,
        gsis: &RwLock<BTreeMap<u32, Arc<Gsi>>>,
    ) -> Result<Vec<u8>, String> {
        // The base partition first: see the module docs.
        let mut views = vec![(
            Part::Base,
            partition.snapshot_view().map_err(|e| e.to_string())?,
        )];
        let gsis: Vec<Arc<Gsi>> = gsis.read().values().cloned().collect();
        for gsi in &gsis {
            views.push((
                Part::Gsi(gsi.def.id),
                gsi.shard.snapshot_view().map_err(|e| e.to_string())?,
            ));
        }
        let offer = Offer {
            token: rand::random(),
            source: self.node_id,
            parts: views.iter().map(|(p, _)| *p).collect(),
        };
        let mut sessions = self.sessions.lock();
        // A session being read right now is in use (and not waited for: this runs on the Raft
        // driver thread).
        sessions.retain(|_, s| {
            s.try_lock()
                .is_none_or(|s| s.last_used.elapsed() < SESSION_IDLE)
        });
        sessions.insert(
            offer.token,
            Arc::new(Mutex::new(Session {
                group,
                views,
                last_used: Instant::now(),
            })),
        );
        tracing::info!(
            group,
            applied = partition.applied_index(),
            "offering a partition snapshot"
        );
        Ok(offer.encode())
    }

    /// Leader: one chunk of part `part` of session `token` from `at`. Runs on a blocking
    /// thread. Request: token u64 ‖ group u64 ‖ part index u32 ‖ position. Reply: has next u8 ‖
    /// (position length u32 ‖ position)? ‖ chunk.
    pub(crate) fn serve_chunk(&self, cluster: &Cluster, payload: &[u8]) -> Result<Bytes, String> {
        let (Some(token), Some(group), Some(part)) =
            (be_u64(payload, 0), be_u64(payload, 8), be_u32(payload, 16))
        else {
            return Err("malformed snapshot chunk request".into());
        };
        let at = SnapshotPosition::decode(payload.get(20..).unwrap_or_default())
            .map_err(|e| e.to_string())?;
        let session = self.sessions.lock().get(&token).cloned();
        let Some(session) = session else {
            // Closed (idle, or the node restarted): the group must offer a new snapshot.
            cluster.raft.drop_snapshot(group);
            return Err(format!(
                "snapshot session {token:016x} of group {group} is gone"
            ));
        };
        let mut session = session.lock();
        if session.group != group {
            return Err("snapshot session of another group".into());
        }
        session.last_used = Instant::now();
        let (_, view) = session
            .views
            .get(part as usize)
            .ok_or_else(|| format!("snapshot part {part} does not exist"))?;
        let chunk = shoal_storage::read_chunk(view.as_ref(), &at, CHUNK_BYTES).map_err(|e| {
            tracing::warn!(group, error = %e, "reading a snapshot chunk failed");
            e.to_string()
        })?;
        let mut out = Vec::with_capacity(chunk.data.len() + 64);
        match &chunk.next {
            Some(next) => {
                let pos = next.encode();
                out.push(1);
                out.extend_from_slice(&(pos.len() as u32).to_be_bytes());
                out.extend_from_slice(&pos);
            }
            None => out.push(0),
        }
        out.extend_from_slice(&chunk.data);
        self.metrics.snapshot_chunk_sent(chunk.data.len() as u64);
        Ok(out.into())
    }

    /// Follower: a snapshot message whose data is an offer. Starts its transfer (unless one
    /// runs for the group), then steps the message into Raft.
    pub(crate) fn inbound(self: &Arc<Self>, cluster: &Arc<Cluster>, from: NodeId, m: GroupMessage) {
        let group = m.group;
        let Some(offer) = Offer::decode(m.msg.get_snapshot().get_data()) else {
            tracing::warn!(group, from, "malformed snapshot offer dropped");
            return;
        };
        if !self.downloading.lock().insert(group) {
            tracing::debug!(group, "snapshot transfer already running; offer dropped");
            return;
        }
        if let Some(r) = self.replicas.lock().get(&group) {
            r.ready.store(false, Ordering::SeqCst);
        }
        let this = Arc::clone(self);
        let cluster = Arc::clone(cluster);
        tokio::spawn(async move {
            let started = Instant::now();
            let index = m.msg.get_snapshot().get_metadata().index;
            match this.transfer(&cluster, group, &offer).await {
                Ok((id, bytes)) => {
                    this.metrics.snapshot_received(Ok(bytes), started.elapsed());
                    let secs = started.elapsed().as_secs_f64();
                    tracing::info!(
                        group,
                        index,
                        from = offer.source,
                        bytes,
                        secs,
                        mb_per_s = (bytes as f64 / 1e6) / secs.max(1e-6),
                        "partition snapshot received"
                    );
                    let mut msg = m.msg;
                    let mut local = LOCAL_MAGIC.to_vec();
                    local.extend_from_slice(&id.to_be_bytes());
                    msg.mut_snapshot().set_data(local.into());
                    cluster.raft.step(from, vec![GroupMessage { group, msg }]);
                }
                Err(e) => {
                    this.metrics.snapshot_received(Err(()), started.elapsed());
                    tracing::warn!(
                        group,
                        index,
                        from = offer.source,
                        error = %e,
                        "partition snapshot transfer failed; the leader will offer it again"
                    );
                }
            }
            this.downloading.lock().remove(&group);
        });
    }

    /// Pulls every part of `offer` into staging engines; returns the staged id and the bytes.
    async fn transfer(
        &self,
        cluster: &Cluster,
        group: GroupId,
        offer: &Offer,
    ) -> Result<(u64, u64), String> {
        let (partition, gsis) = {
            let replicas = self.replicas.lock();
            let r = replicas
                .get(&group)
                .ok_or_else(|| "no local replica of the group".to_string())?;
            (r.partition.upgrade(), r.gsis.upgrade())
        };
        let partition = partition.ok_or("the local replica was closed")?;
        let addr = cluster
            .peer_addr(offer.source)
            .ok_or_else(|| format!("node {} has no known address", offer.source))?;
        let mut staged_base = None;
        let mut staged_gsis = Vec::new();
        let mut bytes = 0u64;
        for (slot, part) in offer.parts.iter().enumerate() {
            let target: Option<Box<dyn Engine>> = match part {
                Part::Base => Some(stage(&partition, |p| p.stage()).await?),
                Part::Gsi(id) => {
                    let gsi = gsis.as_ref().and_then(|m| m.read().get(id).cloned());
                    match gsi.map(|g| Arc::clone(&g.shard)) {
                        Some(p) => Some(stage(&p, |p| p.stage()).await?),
                        // An index this node does not have (being created or deleted): its
                        // backfill or removal takes care of it.
                        None => None,
                    }
                }
            };
            let Some(target) = target else {
                continue;
            };
            let (target, n) = self
                .pull_part(cluster, &addr, offer.token, group, slot as u32, target)
                .await?;
            bytes += n;
            match part {
                Part::Base => staged_base = Some(target),
                Part::Gsi(id) => staged_gsis.push((*id, target)),
            }
        }
        let base = staged_base.ok_or("the offer has no base partition")?;
        let id = self.next_staged.fetch_add(1, Ordering::Relaxed);
        let mut staged = self.staged.lock();
        staged.retain(|_, s| s.at.elapsed() < STAGED_TTL);
        staged.insert(
            id,
            Staged {
                group,
                base,
                gsis: staged_gsis,
                at: Instant::now(),
                bytes,
            },
        );
        Ok((id, bytes))
    }

    /// Pulls one part, chunk by chunk, into `target`.
    async fn pull_part(
        &self,
        cluster: &Cluster,
        addr: &str,
        token: u64,
        group: GroupId,
        slot: u32,
        target: Box<dyn Engine>,
    ) -> Result<(Box<dyn Engine>, u64), String> {
        let target: Arc<Box<dyn Engine>> = Arc::new(target);
        let mut at = Some(SnapshotPosition::start());
        let mut bytes = 0u64;
        while let Some(pos) = at {
            let mut req = Vec::with_capacity(32 + pos.from.len());
            req.extend_from_slice(&token.to_be_bytes());
            req.extend_from_slice(&group.to_be_bytes());
            req.extend_from_slice(&slot.to_be_bytes());
            req.extend_from_slice(&pos.encode());
            let req = Bytes::from(req);
            let mut attempt = 0;
            let reply = loop {
                attempt += 1;
                match cluster
                    .rpc
                    .call(addr, kind::SNAPSHOT_CHUNK, req.clone(), CHUNK_TIMEOUT)
                    .await
                {
                    Ok(r) => break r,
                    Err(e) if attempt < CHUNK_RETRIES && !e.to_string().contains("is gone") => {
                        tracing::warn!(group, attempt, error = %e, "snapshot chunk request failed; retrying");
                        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                    }
                    Err(e) => return Err(format!("chunk request: {e}")),
                }
            };
            let (next, chunk) = parse_reply(&reply)?;
            bytes += chunk.len() as u64;
            let t = Arc::clone(&target);
            let chunk = chunk.to_vec();
            tokio::task::spawn_blocking(move || {
                shoal_storage::write_chunk(t.as_ref().as_ref(), &chunk)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("writing a snapshot chunk: {e}"))?;
            at = next;
        }
        let target = Arc::try_unwrap(target).map_err(|_| "staging engine still shared")?;
        Ok((target, bytes))
    }

    /// Follower, in the state machine's restore: swaps the staged snapshot named by `data` in.
    /// Returns `None` when `data` is not a local descriptor.
    pub(crate) fn install(
        &self,
        group: GroupId,
        data: &[u8],
        index: u64,
    ) -> Option<Result<u64, String>> {
        if !data.starts_with(LOCAL_MAGIC) {
            return None;
        }
        let Some(id) = be_u64(data, 4) else {
            return Some(Err("malformed local snapshot descriptor".into()));
        };
        let Some(staged) = self.staged.lock().remove(&id) else {
            return Some(Err(format!("staged snapshot {id} is gone")));
        };
        if staged.group != group {
            return Some(Err("staged snapshot of another group".into()));
        }
        let replica = self
            .replicas
            .lock()
            .get(&group)
            .map(|r| (r.partition.upgrade(), r.gsis.upgrade(), r.shipper.upgrade()));
        let Some((Some(partition), gsis, shipper)) = replica else {
            return Some(Err("the local replica was closed".into()));
        };
        let install = || -> Result<(), String> {
            partition
                .install(staged.base, index)
                .map_err(|e| e.to_string())?;
            for (gsi_id, engine) in staged.gsis {
                let part = gsis
                    .as_ref()
                    .and_then(|m| m.read().get(&gsi_id).cloned())
                    .map(|g| Arc::clone(&g.shard));
                if let Some(p) = part {
                    p.install(engine, index).map_err(|e| e.to_string())?;
                }
            }
            Ok(())
        };
        let result = match &shipper {
            Some(s) => s.replace(install),
            None => install(),
        };
        Some(result.map(|()| staged.bytes))
    }
}

/// Makes a staging engine of `target` on a blocking thread.
async fn stage<T: Send + Sync + 'static>(
    target: &Arc<T>,
    make: impl FnOnce(&T) -> Result<Box<dyn Engine>, shoal_storage::StorageError> + Send + 'static,
) -> Result<Box<dyn Engine>, String> {
    let t = Arc::clone(target);
    tokio::task::spawn_blocking(move || make(&t))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("creating a staging file: {e}"))
}

fn parse_reply(reply: &[u8]) -> Result<(Option<SnapshotPosition>, &[u8]), String> {
    let bad = || "malformed snapshot chunk reply".to_string();
    match reply.first() {
        Some(0) => Ok((None, &reply[1..])),
        Some(1) => {
            let n = be_u32(reply, 1).ok_or_else(bad)? as usize;
            let pos = reply.get(5..5 + n).ok_or_else(bad)?;
            let pos = SnapshotPosition::decode(pos).map_err(|e| e.to_string())?;
            Ok((Some(pos), reply.get(5 + n..).ok_or_else(bad)?))
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn offers_round_trip_and_junk_is_not_one() {
        let offer = Offer {
            token: 7,
            source: 3,
            parts: vec![Part::Base, Part::Gsi(2), Part::Gsi(9)],
        };
        let bytes = offer.encode();
        assert!(is_offer(&bytes));
        let back = Offer::decode(&bytes).unwrap();
        assert_eq!((back.token, back.source), (7, 3));
        assert_eq!(back.parts, offer.parts);
        assert!(Offer::decode(&bytes[..bytes.len() - 1]).is_none());
        assert!(!is_offer(&[1, 0, 0, 0]));
    }

    #[test]
    fn chunk_replies_parse() {
        let pos = SnapshotPosition {
            space: shoal_storage::Space::Index,
            from: b"abc".to_vec(),
        };
        let mut reply = vec![1];
        reply.extend_from_slice(&(pos.encode().len() as u32).to_be_bytes());
        reply.extend_from_slice(&pos.encode());
        reply.extend_from_slice(b"data");
        let (next, chunk) = parse_reply(&reply).unwrap();
        assert_eq!(next, Some(pos));
        assert_eq!(chunk, b"data");
        assert_eq!(parse_reply(&[0, 5]).unwrap(), (None, &[5u8][..]));
        assert!(parse_reply(&[1, 0, 0, 0, 9]).is_err());
        assert!(parse_reply(&[]).is_err());
    }
}
