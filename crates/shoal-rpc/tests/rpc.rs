//! End-to-end tests of shoal-rpc over real TLS sockets on 127.0.0.1.

// Helpers outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use shoal_rpc::frame::{Frame, MAX_FRAME_LEN, flags, read_frame, write_frame};
use shoal_rpc::{
    ClusterCa, Handler, JoinToken, NodeCert, RpcClient, RpcError, RpcServer, TlsIdentity,
    unauthenticated_call,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const T: Duration = Duration::from_secs(10);
const KIND_ECHO: u32 = 1;
const KIND_SLOW_ECHO: u32 = 2;
const KIND_FAIL: u32 = 3;

#[derive(Default)]
struct TestHandler {
    calls: AtomicUsize,
    unauthenticated: AtomicUsize,
    oneways: Mutex<Vec<(u32, Bytes)>>,
}

#[async_trait]
impl Handler for TestHandler {
    async fn call(&self, kind: u32, payload: Bytes) -> Result<Bytes, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match kind {
            KIND_ECHO => Ok(payload),
            KIND_SLOW_ECHO => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok(payload)
            }
            KIND_FAIL => Err("boom".to_string()),
            other => Err(format!("unknown kind {other}")),
        }
    }

    fn oneway(&self, kind: u32, payload: Bytes) {
        self.oneways.lock().push((kind, payload));
    }

    async fn unauthenticated_call(&self, _kind: u32, payload: Bytes) -> Result<Bytes, String> {
        self.unauthenticated.fetch_add(1, Ordering::SeqCst);
        let mut out = b"join:".to_vec();
        out.extend_from_slice(&payload);
        Ok(Bytes::from(out))
    }
}

struct Fixture {
    ca: ClusterCa,
    server_tls: TlsIdentity,
    client_tls: TlsIdentity,
    handler: Arc<TestHandler>,
    server: RpcServer,
}

impl Fixture {
    async fn start() -> Fixture {
        let ca = ClusterCa::generate("test-cluster").unwrap();
        let server_tls = TlsIdentity::new(&ca.cert_pem, &ca.issue(1).unwrap()).unwrap();
        let client_tls = TlsIdentity::new(&ca.cert_pem, &ca.issue(2).unwrap()).unwrap();
        let handler = Arc::new(TestHandler::default());
        let server = RpcServer::bind(localhost0(), &server_tls, handler.clone())
            .await
            .unwrap();
        Fixture {
            ca,
            server_tls,
            client_tls,
            handler,
            server,
        }
    }

    fn addr(&self) -> String {
        self.server.local_addr().to_string()
    }
}

fn localhost0() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A raw rustls client config trusting `ca_pem`, presenting `cert` (chain [leaf]) if given.
fn raw_config(ca_pem: &str, cert: Option<&NodeCert>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let builder = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match cert {
        Some(cert) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// A TCP forwarder to `target` counting the connections it accepted.
async fn counting_proxy(target: SocketAddr) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind(localhost0()).await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut outbound = TcpStream::connect(target).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    (addr, count)
}

async fn raw_connect(
    config: Arc<ClientConfig>,
    addr: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(config)
        .connect(ServerName::try_from("shoal-node").unwrap(), tcp)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_call_and_remote_error() {
    let f = Fixture::start().await;
    let client = RpcClient::new(&f.client_tls);
    let got = client
        .call(&f.addr(), KIND_ECHO, Bytes::from_static(b"hello"), T)
        .await
        .unwrap();
    assert_eq!(&got[..], b"hello");
    // Empty payloads survive too.
    let got = client
        .call(&f.addr(), KIND_ECHO, Bytes::new(), T)
        .await
        .unwrap();
    assert!(got.is_empty());
    match client.call(&f.addr(), KIND_FAIL, Bytes::new(), T).await {
        Err(RpcError::Remote(message)) => assert_eq!(message, "boom"),
        other => panic!("expected a remote error, got {other:?}"),
    }
    assert_eq!(f.handler.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_calls_are_handled_concurrently_and_matched_by_id() {
    let f = Fixture::start().await;
    let client = RpcClient::new(&f.client_tls);
    let (addr, connections) = counting_proxy(f.server.local_addr()).await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..1000u32 {
        let client = client.clone();
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            let payload = Bytes::from(i.to_be_bytes().to_vec());
            let got = client
                .call(&addr, KIND_SLOW_ECHO, payload, Duration::from_secs(30))
                .await
                .unwrap();
            assert_eq!(
                &got[..],
                &i.to_be_bytes(),
                "response of call {i} matched to the wrong request"
            );
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Each call sleeps 200 ms in the handler: serially that would take 200 s.
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(15),
        "1000 calls took {elapsed:?}: not handled concurrently"
    );
    assert_eq!(f.handler.calls.load(Ordering::SeqCst), 1000);
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "calls were not multiplexed on one connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oneway_messages_arrive_in_order() {
    let f = Fixture::start().await;
    let client = RpcClient::new(&f.client_tls);
    for i in 0..2000u32 {
        client.send(&f.addr(), 7, Bytes::from(i.to_be_bytes().to_vec()));
        if i % 500 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let deadline = Instant::now() + T;
    while f.handler.oneways.lock().len() < 2000 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let got = f.handler.oneways.lock().clone();
    assert_eq!(got.len(), 2000, "one-way messages lost");
    for (i, (kind, payload)) in got.iter().enumerate() {
        assert_eq!(*kind, 7);
        assert_eq!(
            &payload[..],
            &(i as u32).to_be_bytes(),
            "message {i} out of order"
        );
    }
    assert_eq!(f.handler.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_with_certificate_from_another_ca_cannot_connect() {
    let f = Fixture::start().await;
    let other = ClusterCa::generate("other-cluster").unwrap();
    let foreign = other.issue(9).unwrap();

    // Trusts the right CA but presents a foreign certificate: the server rejects the handshake.
    let client = RpcClient::new(&TlsIdentity::new(&f.ca.cert_pem, &foreign).unwrap());
    let result = client
        .call(&f.addr(), KIND_ECHO, Bytes::from_static(b"x"), T)
        .await;
    assert!(
        result.is_err(),
        "a foreign certificate got through: {result:?}"
    );
    client.send(&f.addr(), 7, Bytes::from_static(b"x"));

    // Same with a raw TLS client: whatever the client believes, the server never serves it.
    let raw = raw_config(&f.ca.cert_pem, Some(&foreign));
    let outcome = match raw_connect(raw, &f.addr()).await {
        Err(e) => Err(e.to_string()),
        Ok(mut tls) => {
            let frame = Frame::new(1, KIND_ECHO, flags::REQUEST, Bytes::from_static(b"x"));
            let _ = write_frame(&mut tls, &frame).await;
            let _ = tls.flush().await;
            match read_frame(&mut tls, MAX_FRAME_LEN).await {
                Ok(Some(frame)) => Ok(frame),
                other => Err(format!("{other:?}")),
            }
        }
    };
    let error = outcome.expect_err("the server answered a client with a foreign certificate");
    // The server refuses the certificate with a TLS alert (during the handshake or right after it, TLS 1.3).
    let lower = error.to_lowercase();
    assert!(
        lower.contains("unknownca") || lower.contains("cert"),
        "not a certificate rejection: {error}"
    );

    // A client of the other cluster does not trust our server either.
    let stranger = RpcClient::new(&TlsIdentity::new(&other.cert_pem, &foreign).unwrap());
    match stranger.call(&f.addr(), KIND_ECHO, Bytes::new(), T).await {
        Err(RpcError::Connect { .. }) => {}
        other => panic!("expected a connect error, got {other:?}"),
    }

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(f.handler.calls.load(Ordering::SeqCst), 0);
    assert_eq!(f.handler.unauthenticated.load(Ordering::SeqCst), 0);
    assert!(f.handler.oneways.lock().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_without_certificate_reaches_only_unauthenticated_call() {
    let f = Fixture::start().await;
    let anonymous = raw_config(&f.ca.cert_pem, None);

    // A member request from it is refused and the connection closed.
    let mut tls = raw_connect(anonymous.clone(), &f.addr()).await.unwrap();
    write_frame(
        &mut tls,
        &Frame::new(5, KIND_ECHO, flags::REQUEST, Bytes::from_static(b"x")),
    )
    .await
    .unwrap();
    tls.flush().await.unwrap();
    let response = read_frame(&mut tls, MAX_FRAME_LEN).await.unwrap().unwrap();
    assert_eq!(response.id, 5);
    assert!(response.has(flags::RESPONSE | flags::ERROR));
    assert!(String::from_utf8_lossy(&response.payload).contains("authentication required"));
    let after = read_frame(&mut tls, MAX_FRAME_LEN).await;
    assert!(
        matches!(after, Ok(None) | Err(_)),
        "connection still open: {after:?}"
    );

    // A one-way message too.
    let mut tls = raw_connect(anonymous.clone(), &f.addr()).await.unwrap();
    write_frame(
        &mut tls,
        &Frame::new(0, 7, flags::ONEWAY, Bytes::from_static(b"x")),
    )
    .await
    .unwrap();
    tls.flush().await.unwrap();
    let response = read_frame(&mut tls, MAX_FRAME_LEN).await.unwrap().unwrap();
    assert!(response.has(flags::ERROR));
    let after = read_frame(&mut tls, MAX_FRAME_LEN).await;
    assert!(
        matches!(after, Ok(None) | Err(_)),
        "connection still open: {after:?}"
    );

    // The unauthenticated entry point works, raw and through unauthenticated_call.
    let mut tls = raw_connect(anonymous, &f.addr()).await.unwrap();
    let request = Frame::new(
        9,
        1,
        flags::REQUEST | flags::UNAUTHENTICATED,
        Bytes::from_static(b"me"),
    );
    write_frame(&mut tls, &request).await.unwrap();
    tls.flush().await.unwrap();
    let response = read_frame(&mut tls, MAX_FRAME_LEN).await.unwrap().unwrap();
    assert_eq!((response.id, &response.payload[..]), (9, &b"join:me"[..]));
    assert!(!response.has(flags::ERROR));

    let got = unauthenticated_call(
        &f.addr(),
        f.ca.fingerprint(),
        1,
        Bytes::from_static(b"node"),
        T,
    )
    .await
    .unwrap();
    assert_eq!(&got[..], b"join:node");

    assert_eq!(f.handler.calls.load(Ordering::SeqCst), 0);
    assert!(f.handler.oneways.lock().is_empty());
    assert_eq!(f.handler.unauthenticated.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_call_with_wrong_ca_fingerprint_fails() {
    let f = Fixture::start().await;
    let mut wrong = f.ca.fingerprint();
    wrong[0] ^= 1;
    match unauthenticated_call(&f.addr(), wrong, 1, Bytes::from_static(b"x"), T).await {
        Err(RpcError::Connect { message, .. }) => {
            assert!(
                message.contains("fingerprint"),
                "unexpected message: {message}"
            )
        }
        other => panic!("expected a connect error, got {other:?}"),
    }
    // A server of another cluster, even with the token's fingerprint of our CA, is not trusted.
    let other = ClusterCa::generate("other").unwrap();
    let handler = Arc::new(TestHandler::default());
    let other_server = RpcServer::bind(
        localhost0(),
        &TlsIdentity::new(&other.cert_pem, &other.issue(1).unwrap()).unwrap(),
        handler,
    )
    .await
    .unwrap();
    let result = unauthenticated_call(
        &other_server.local_addr().to_string(),
        f.ca.fingerprint(),
        1,
        Bytes::new(),
        T,
    )
    .await;
    assert!(
        matches!(result, Err(RpcError::Connect { .. })),
        "{result:?}"
    );
    assert_eq!(f.handler.unauthenticated.load(Ordering::SeqCst), 0);
}

#[test]
fn join_token_round_trip_and_garbage() {
    let ca = ClusterCa::generate("c-1").unwrap();
    let token = JoinToken::generate("c-1", &ca, 1_900_000_000);
    assert_eq!(token.ca_fingerprint, ca.fingerprint());
    let text = token.to_string();
    assert!(text.starts_with("SHOAL2-"), "{text}");
    let parsed: JoinToken = text.parse().unwrap();
    assert_eq!(parsed, token);
    assert!(parsed.verify_secret(&token.secret));
    let mut wrong = token.secret;
    wrong[31] ^= 0x80;
    assert!(!parsed.verify_secret(&wrong));
    assert!(!parsed.verify_secret(&token.secret[..31]));
    assert!(!parsed.verify_secret(b""));
    // Two tokens never share a secret.
    assert_ne!(JoinToken::generate("c-1", &ca, 1).secret, token.secret);
    // The expiry round-trips and is checked against the given clock.
    assert_eq!(parsed.expires_at, 1_900_000_000);
    assert!(!parsed.is_expired(1_899_999_999));
    assert!(parsed.is_expired(1_900_000_000));
    // The digest identifies the secret without revealing it.
    assert_eq!(parsed.secret_digest(), token.secret_digest());
    assert_ne!(parsed.secret_digest(), parsed.secret);
    // Debug never shows the secret.
    let debug = format!("{token:?}");
    assert!(!debug.contains(&format!("{:?}", token.secret)), "{debug}");
    assert!(!debug.contains(&text[7..]), "{debug}");

    for garbage in [
        "",
        "SHOAL2-",
        "SHOAL3-AAAA",
        "hello",
        "SHOAL2-!!!notbase64",
        "SHOAL2-AAAAAAAA",
    ] {
        match garbage.parse::<JoinToken>() {
            Err(RpcError::InvalidToken(message)) => assert!(!message.is_empty()),
            other => panic!("{garbage:?} parsed: {other:?}"),
        }
    }
    // An empty cluster id round-trips too.
    let empty = JoinToken {
        cluster_id: String::new(),
        ..token.clone()
    };
    assert_eq!(empty.to_string().parse::<JoinToken>().unwrap(), empty);
    // A truncated real token is rejected.
    assert!(text[..60].parse::<JoinToken>().is_err());
    // A token of the first format (64 bytes: no expiry) is refused, saying what to do.
    let v1 = format!("SHOAL1-{}", &text[7..93]);
    match v1.parse::<JoinToken>() {
        Err(RpcError::InvalidToken(message)) => assert!(
            message.contains("no longer accepted") && message.contains("shoal cluster join-token"),
            "{message}"
        ),
        other => panic!("a SHOAL1 token parsed: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reconnects_after_server_restart() {
    let f = Fixture::start().await;
    let addr = f.server.local_addr();
    let client = RpcClient::new(&f.client_tls);
    client
        .call(&addr.to_string(), KIND_ECHO, Bytes::from_static(b"1"), T)
        .await
        .unwrap();

    f.server.shutdown().await;
    let down = client
        .call(&addr.to_string(), KIND_ECHO, Bytes::from_static(b"2"), T)
        .await;
    assert!(
        matches!(
            down,
            Err(RpcError::ConnectionLost | RpcError::Connect { .. })
        ),
        "call to a stopped server: {down:?}"
    );

    let handler = Arc::new(TestHandler::default());
    let _server = RpcServer::bind(addr, &f.server_tls, handler.clone())
        .await
        .unwrap();
    let deadline = Instant::now() + T;
    loop {
        match client
            .call(&addr.to_string(), KIND_ECHO, Bytes::from_static(b"3"), T)
            .await
        {
            Ok(got) => {
                assert_eq!(&got[..], b"3");
                break;
            }
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("client never reconnected: {e}"),
        }
    }
    // One-way messages flow again too.
    client.send(&addr.to_string(), 7, Bytes::from_static(b"after"));
    let deadline = Instant::now() + T;
    while handler.oneways.lock().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(handler.oneways.lock().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frame_is_rejected_without_allocating() {
    // Directly: a 4 GiB length is refused before any body is read.
    let header: &[u8] = &[0xff, 0xff, 0xff, 0xff, 1, 2, 3];
    let mut reader = header;
    match read_frame(&mut reader, MAX_FRAME_LEN).await {
        Err(RpcError::FrameTooLarge { len, max }) => {
            assert_eq!(len, u32::MAX as usize);
            assert_eq!(max, MAX_FRAME_LEN);
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    // Just above the limit is refused, the limit itself is accepted (body then missing: an I/O error).
    let over = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes();
    assert!(matches!(
        read_frame(&mut &over[..], MAX_FRAME_LEN).await,
        Err(RpcError::FrameTooLarge { .. })
    ));
    let at = (MAX_FRAME_LEN as u32).to_be_bytes();
    assert!(matches!(
        read_frame(&mut &at[..], MAX_FRAME_LEN).await,
        Err(RpcError::Io(_))
    ));

    // Over the network: a member declaring a 4 GiB frame is disconnected; the server keeps serving.
    let f = Fixture::start().await;
    let member = f.ca.issue(3).unwrap();
    let mut tls = raw_connect(raw_config(&f.ca.cert_pem, Some(&member)), &f.addr())
        .await
        .unwrap();
    tls.write_all(&[0xff, 0xff, 0xff, 0xf0]).await.unwrap();
    tls.flush().await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(T, tls.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(
        n, 0,
        "server kept the connection open after an oversized frame header"
    );
    // An anonymous peer is limited to 1 MiB.
    let mut tls = raw_connect(raw_config(&f.ca.cert_pem, None), &f.addr())
        .await
        .unwrap();
    tls.write_all(&(2u32 << 20).to_be_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    let n = tokio::time::timeout(T, tls.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(
        n, 0,
        "server kept an anonymous connection open after a 2 MiB frame header"
    );

    let client = RpcClient::new(&f.client_tls);
    assert_eq!(
        &client
            .call(&f.addr(), KIND_ECHO, Bytes::from_static(b"ok"), T)
            .await
            .unwrap()[..],
        b"ok"
    );
    // A payload over the limit fails locally without breaking the connection.
    let huge = Bytes::from(vec![0u8; MAX_FRAME_LEN + 1]);
    assert!(matches!(
        client.call(&f.addr(), KIND_ECHO, huge, T).await,
        Err(RpcError::FrameTooLarge { .. })
    ));
    assert_eq!(
        &client
            .call(&f.addr(), KIND_ECHO, Bytes::from_static(b"ok"), T)
            .await
            .unwrap()[..],
        b"ok"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloaded_ca_issues_certificates_the_cluster_accepts() {
    let f = Fixture::start().await;
    let reloaded = ClusterCa::from_pem(&f.ca.cert_pem, &f.ca.key_pem).unwrap();
    assert_eq!(reloaded.fingerprint(), f.ca.fingerprint());
    let cert = reloaded.issue(42).unwrap();
    let client = RpcClient::new(&TlsIdentity::new(&reloaded.cert_pem, &cert).unwrap());
    assert_eq!(
        &client
            .call(&f.addr(), KIND_ECHO, Bytes::from_static(b"hi"), T)
            .await
            .unwrap()[..],
        b"hi"
    );
    // A server whose certificate came from the reloaded CA passes the join check too.
    let handler = Arc::new(TestHandler::default());
    let server = RpcServer::bind(
        localhost0(),
        &TlsIdentity::new(&reloaded.cert_pem, &cert).unwrap(),
        handler,
    )
    .await
    .unwrap();
    let got = unauthenticated_call(
        &server.local_addr().to_string(),
        f.ca.fingerprint(),
        1,
        Bytes::new(),
        T,
    )
    .await
    .unwrap();
    assert_eq!(&got[..], b"join:");

    assert!(ClusterCa::from_pem("not a pem", &f.ca.key_pem).is_err());
    assert!(ClusterCa::from_pem(&f.ca.cert_pem, "not a key").is_err());
    assert!(TlsIdentity::new("garbage", &cert).is_err());
}
