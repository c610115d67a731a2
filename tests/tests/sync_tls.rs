//! The pull API over TLS and mTLS, with certificates made for the test (rcgen): a client that
//! trusts the CA and presents a certificate gets through, `store-edge pull` too; no client
//! certificate, an untrusted server, or plaintext are refused. And a config that would serve
//! plaintext on a non-loopback address is refused at start-up.

// Test code: a panic with its message is the failure report.
#![allow(clippy::unwrap_used)]

use edge_e2e::{path_str, simulate, store_edge, Agent};
use edge_proto::v1 as pb;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

struct Pki {
    ca: String,
    server: (String, String),
    client: (String, String),
    other_ca: String,
}

fn pki() -> Pki {
    let ca = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        let cert = p.self_signed(&key).unwrap();
        (cert.pem(), Issuer::new(p, key))
    };
    let (ca_pem, issuer) = ca("store-edge test CA");
    let (other_ca, _) = ca("someone else's CA");
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca: ca_pem,
        server: leaf(vec!["localhost".into()]),
        client: leaf(vec!["cloud-puller".into()]),
        other_ca,
    }
}

async fn info(endpoint: &str, tls: ClientTlsConfig) -> Result<pb::GetInfoResponse, String> {
    let channel = Endpoint::from_shared(endpoint.to_string())
        .unwrap()
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))?;
    pb::sync_client::SyncClient::new(channel)
        .get_info(pb::GetInfoRequest {})
        .await
        .map(|r| r.into_inner())
        .map_err(|e| format!("{e:?}"))
}

#[test]
fn mtls_lets_the_right_client_in_and_nobody_else() {
    let dir = tempfile::tempdir().unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let w = simulate(dir.path(), &edge_sim::SimParams::new(5, date, 20, 1));
    let p = pki();
    let write = |name: &str, text: &str| {
        std::fs::write(dir.path().join(name), text).unwrap();
    };
    write("ca.pem", &p.ca);
    write("other-ca.pem", &p.other_ca);
    write("server.pem", &p.server.0);
    write("server.key", &p.server.1);
    write("client.pem", &p.client.0);
    write("client.key", &p.client.1);
    let mut text = std::fs::read_to_string(&w.config_path).unwrap();
    // Any address: mTLS stands in for tokens, TLS for loopback.
    text.push_str(
        "\n[sync]\nlisten = \"0.0.0.0:0\"\n[sync.tls]\ncert = \"server.pem\"\nkey = \"server.key\"\nclient_ca = \"ca.pem\"\n",
    );
    std::fs::write(&w.config_path, text).unwrap();
    let agent = Agent::start(&w.config_path);
    let endpoint = format!("https://localhost:{}", agent.port);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let trusted = || ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&p.ca));
    rt.block_on(async {
        let ok = info(
            &endpoint,
            trusted().identity(Identity::from_pem(&p.client.0, &p.client.1)),
        )
        .await
        .unwrap();
        assert_eq!(ok.store_id, "sim-store");
        // No client certificate: the handshake or the first call fails.
        assert!(info(&endpoint, trusted()).await.is_err());
        // A client that does not trust the server's CA refuses it.
        let wrong = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&p.other_ca))
            .identity(Identity::from_pem(&p.client.0, &p.client.1));
        assert!(info(&endpoint, wrong).await.is_err());
        // Plaintext gets nowhere.
        let plain = async {
            let ch = Endpoint::from_shared(format!("http://localhost:{}", agent.port))
                .unwrap()
                .connect()
                .await
                .map_err(|e| e.to_string())?;
            pb::sync_client::SyncClient::new(ch)
                .get_info(pb::GetInfoRequest {})
                .await
                .map_err(|e| e.to_string())
        };
        assert!(plain.await.is_err());
    });

    // The reference client over mTLS.
    let out = dir.path().join("pulled.jsonl");
    let r = store_edge(&[
        "pull",
        "--endpoint",
        &endpoint,
        "--out",
        path_str(&out),
        "--ca-cert",
        path_str(&dir.path().join("ca.pem")),
        "--cert",
        path_str(&dir.path().join("client.pem")),
        "--key",
        path_str(&dir.path().join("client.key")),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let pulled = std::fs::read_to_string(&out).unwrap().lines().count() as u64;
    assert_eq!(pulled, edge_e2e::count(&dir.path().join("data"), "outbox"));
    assert!(pulled > 0);
}

#[test]
fn plaintext_off_loopback_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let w = simulate(dir.path(), &edge_sim::SimParams::new(5, date, 5, 1));
    let mut text = std::fs::read_to_string(&w.config_path).unwrap();
    text.push_str("\n[sync]\nlisten = \"0.0.0.0:0\"\n");
    std::fs::write(&w.config_path, text).unwrap();
    let out = store_edge(&["run", "--config", path_str(&w.config_path)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sync.listen"), "{err}");
    assert!(err.contains("plaintext"), "{err}");
    assert!(err.contains(path_str(&w.config_path)), "{err}");
}
