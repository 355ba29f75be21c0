//! Raft messages in their group envelope, and the entries handed to state machines.

use protobuf::Message as _;
use raft::eraftpb::Message;

use crate::{GroupId, RaftError};

/// A raft message of one group (raft's [`Message`] carries no group id).
#[derive(Clone, Debug)]
pub struct GroupMessage {
    /// The group the message belongs to.
    pub group: GroupId,
    /// The raft message.
    pub msg: Message,
}

impl GroupMessage {
    /// Encodes a batch: `u32` count, then per message its group (`u64`), length (`u32`) and the protobuf
    /// bytes of the raft message (all integers big-endian).
    pub fn encode_batch(msgs: &[GroupMessage]) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 * msgs.len() + 4);
        out.extend_from_slice(&(msgs.len() as u32).to_be_bytes());
        for m in msgs {
            // Writing a well-formed message into a Vec cannot fail; an error leaves an empty body,
            // which the receiver decodes as an empty (ignored) message.
            let body = m.msg.write_to_bytes().unwrap_or_default();
            out.extend_from_slice(&m.group.to_be_bytes());
            out.extend_from_slice(&(body.len() as u32).to_be_bytes());
            out.extend_from_slice(&body);
        }
        out
    }

    /// Encodes `msgs` as one or more batches (each what [`GroupMessage::encode_batch`] makes), in
    /// order, each at most `max_len` bytes unless a single message alone is larger (it then travels
    /// in a batch of its own). A transport whose frames are capped sends each batch as its own frame,
    /// so one round's messages to a peer (several groups' large entries) never make a frame the
    /// transport must drop.
    pub fn encode_batches(msgs: &[GroupMessage], max_len: usize) -> Vec<Vec<u8>> {
        let mut batches = Vec::new();
        let mut start = 0;
        let mut len = 4;
        for (i, m) in msgs.iter().enumerate() {
            let size = 12 + m.msg.compute_size() as usize;
            if i > start && len + size > max_len {
                batches.push(Self::encode_batch(&msgs[start..i]));
                start = i;
                len = 4;
            }
            len += size;
        }
        if start < msgs.len() {
            batches.push(Self::encode_batch(&msgs[start..]));
        }
        batches
    }

    /// Decodes what [`GroupMessage::encode_batch`] produced.
    ///
    /// # Errors
    /// [`RaftError::Codec`] on truncated input, trailing bytes or an invalid raft message.
    pub fn decode_batch(b: &[u8]) -> Result<Vec<GroupMessage>, RaftError> {
        let mut r = Reader(b);
        let count = r.u32()?;
        let mut out = Vec::with_capacity((count as usize).min(4096));
        for _ in 0..count {
            let group = r.u64()?;
            let len = r.u32()? as usize;
            let body = r.take(len)?;
            let msg =
                Message::parse_from_bytes(body).map_err(|e| RaftError::Codec(e.to_string()))?;
            out.push(GroupMessage { group, msg });
        }
        if !r.0.is_empty() {
            return Err(RaftError::Codec(
                "trailing bytes after message batch".into(),
            ));
        }
        Ok(out)
    }
}

/// A cursor over a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RaftError> {
        if self.0.len() < n {
            return Err(RaftError::Codec("truncated message batch".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, RaftError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, RaftError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
}

/// One committed normal entry with data (empty leader no-op entries and conf changes are not passed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// Log index of the entry.
    pub index: u64,
    /// Term of the entry.
    pub term: u64,
    /// The proposed data.
    pub data: Vec<u8>,
    /// The proposal's context.
    pub context: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use raft::eraftpb::{Entry, MessageType};

    use super::*;

    fn append(group: GroupId, bytes: usize) -> GroupMessage {
        let mut msg = Message::default();
        msg.set_msg_type(MessageType::MsgAppend);
        let entry = Entry {
            data: vec![7u8; bytes].into(),
            ..Entry::default()
        };
        msg.entries = vec![entry].into();
        GroupMessage { group, msg }
    }

    #[test]
    fn large_rounds_split_into_batches_under_the_limit_in_order() {
        const MAX: usize = 1 << 20;
        let msgs: Vec<_> = (0..7).map(|g| append(g, 400 << 10)).collect();
        let batches = GroupMessage::encode_batches(&msgs, MAX);
        assert_eq!(
            batches.len(),
            4,
            "2 messages of 400 KiB fit in 1 MiB, 3 do not"
        );
        let mut groups = Vec::new();
        for b in &batches {
            assert!(b.len() <= MAX, "a batch of {} bytes", b.len());
            groups.extend(
                GroupMessage::decode_batch(b)
                    .unwrap()
                    .iter()
                    .map(|m| m.group),
            );
        }
        assert_eq!(groups, (0..7).collect::<Vec<_>>());
    }

    #[test]
    fn a_message_over_the_limit_travels_alone_and_small_rounds_stay_one_batch() {
        let msgs = vec![append(1, 10), append(2, 3 << 20), append(3, 10)];
        let batches = GroupMessage::encode_batches(&msgs, 1 << 20);
        let sizes: Vec<_> = batches
            .iter()
            .map(|b| GroupMessage::decode_batch(b).unwrap().len())
            .collect();
        assert_eq!(sizes, vec![1, 1, 1]);
        let small = vec![append(1, 10), append(2, 10)];
        let one = GroupMessage::encode_batches(&small, 1 << 20);
        assert_eq!(one, vec![GroupMessage::encode_batch(&small)]);
        assert!(GroupMessage::encode_batches(&[], 1 << 20).is_empty());
    }
}
