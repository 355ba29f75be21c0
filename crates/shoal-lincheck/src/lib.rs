//! shoal-lincheck (being written).
