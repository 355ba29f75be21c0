//! shoal-cluster (being written).
