//! The shared Raft log in a SQLCipher file (being written).
