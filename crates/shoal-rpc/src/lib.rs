//! shoal-rpc (being written).
