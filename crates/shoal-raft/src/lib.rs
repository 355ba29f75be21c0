//! shoal-raft (being written).
