//! Shoal's DynamoDB HTTP API.
//!
//! - [`server::serve`] runs the HTTP/1.1 server within the limits of a [`server::ServerConfig`]
//!   (connections, header/idle/body timeouts, body memory, queued work); [`server::Api`] handles
//!   one request: framing and size → SigV4 pre-check of the head ([`sigv4::Verifier`]) → body →
//!   signature → `X-Amz-Target` → JSON → [`ops::dispatch`].
//! - [`backend::Backend`] is everything the API needs from a node (catalog, partitions), so the
//!   API can be tested without a cluster; `shoal-node` implements it.
//! - [`authz`] checks every request against the caller's policy and the tables' resource-based
//!   policies (`shoal-policy`) before the operation runs.
//! - [`error::ApiError`] is the only place errors become DynamoDB `__type` names and statuses.
//!
//! ```no_run
//! # async fn run(backend: std::sync::Arc<dyn shoal_api::backend::Backend>) -> std::io::Result<()> {
//! let api = std::sync::Arc::new(shoal_api::server::Api::new(backend));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! shoal_api::server::serve(listener, api, std::future::pending()).await
//! # }
//! ```

pub mod authz;
pub mod backend;
pub mod error;
pub mod input;
pub mod metrics;
pub mod ops;
pub mod server;
pub mod sigv4;
