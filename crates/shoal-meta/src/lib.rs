//! shoal-meta (being written).
