//! Webhooks over https: a receiver on 127.0.0.1 serving a certificate for `localhost`
//! signed by a CA made here (rcgen), reached when the server trusts that CA through a CA
//! file (`webhooks.ca_file`), and refused — the attempt failing with a response that says
//! why — when it trusts only the public roots. Each case runs on both backends.

use std::net::SocketAddr;
use std::sync::Arc;

use flywheel_server::workers::Delivered;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::helpers::*;
use crate::webhooks::{Receiver, create, deliveries, no_background_delivery, receiver_app, run, submit_one};

/// A test CA (its PEM) and a certificate it signed for `localhost`, with that key.
fn certificates() -> (String, CertificateDer<'static>, PrivateKeyDer<'static>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "Flywheel test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    (ca_cert.pem(), leaf.der().clone(), key)
}

/// A TCP listener whose connections are TLS, for `axum::serve`. A handshake that fails
/// (the client did not trust the certificate) drops that connection only.
struct TlsListener {
    tcp: TcpListener,
    tls: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.tls.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// The tests' webhook receiver over https at `https://localhost:PORT/hook`.
async fn https_receiver(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> (String, Arc<Receiver>) {
    let config = rustls::ServerConfig::builder_with_provider(flywheel_tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://localhost:{}/hook", tcp.local_addr().unwrap().port());
    let listener = TlsListener {
        tcp,
        tls: TlsAcceptor::from(Arc::new(config)),
    };
    let (app, r) = receiver_app();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, r)
}

/// A server whose webhooks trust `ca_pem` (read from a CA file, as `serve` does), or the
/// public roots only.
async fn app_trusting(db: &Db, ca_pem: Option<&str>) -> TestApp {
    let tls = ca_pem.map(|pem| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, pem).unwrap();
        let certs = flywheel_tls::read_ca_file(&path).unwrap();
        Arc::new(flywheel_tls::client_config(&certs).unwrap())
    });
    let clock = Arc::new(flywheel_server::ManualClock::new(START_MS));
    spawn_setup(db, clock, no_background_delivery(), |state| {
        state.webhooks.allow_private = true;
        if let Some(tls) = tls {
            state.webhook_tls = tls;
        }
    })
    .await
}

async fn webhooks_reach_an_https_receiver_whose_ca_is_trusted(db: Db) {
    let (ca_pem, cert, key) = certificates();
    let app = app_trusting(&db, Some(&ca_pem)).await;
    let svc = app.project("spam", example_policy()).await;
    let (url, rx) = https_receiver(cert, key).await;
    let (id, _) = create(&app, &url, json!(["item.decided"])).await;
    submit_one(&app, &svc, "a").await;
    assert_eq!(
        run(&app).await,
        Delivered {
            delivered: 1,
            failed: 0
        }
    );
    let got = rx.delivered();
    assert_eq!(got.len(), 1);
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(
        (body["type"].as_str(), body["external_id"].as_str()),
        (Some("item.decided"), Some("a"))
    );
    assert_eq!(deliveries(&app, id).await[0]["outcome"], "delivered");
    app.stop().await;
}

async fn webhooks_to_an_untrusted_certificate_fail_saying_why(db: Db) {
    let (_, cert, key) = certificates();
    let app = app_trusting(&db, None).await;
    let svc = app.project("spam", example_policy()).await;
    let (url, rx) = https_receiver(cert, key).await;
    let (id, _) = create(&app, &url, json!(["item.decided"])).await;
    submit_one(&app, &svc, "a").await;
    assert_eq!(
        run(&app).await,
        Delivered {
            delivered: 0,
            failed: 1
        }
    );
    assert!(rx.got().is_empty(), "no request crosses an untrusted handshake");
    let d = deliveries(&app, id).await;
    assert_eq!(
        (d[0]["outcome"].as_str(), d[0]["status"].as_u64()),
        (Some("failed"), None)
    );
    let response = d[0]["response"].as_str().unwrap();
    assert!(
        response.contains("invalid peer certificate") && response.contains("UnknownIssuer"),
        "{response}"
    );
    app.stop().await;
}

on_both_backends!(
    webhooks_reach_an_https_receiver_whose_ca_is_trusted,
    webhooks_to_an_untrusted_certificate_fail_saying_why,
);
