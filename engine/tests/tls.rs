//! TLS and mTLS served by the engine itself: with a client CA, only clients presenting a
//! certificate signed by it are served; without, any TLS client trusting the server's CA
//! is. Certificates are generated at run time, never stored in source.

use std::{path::PathBuf, process::Command};

use capstan::{
    testing::{TempFiles, TestCa},
    Client, ClientError, TlsConfig,
};
use capstan_engine::{Engine, EngineError, EngineOptions, EngineTls};
use capstan_examples::{tour, worker};

mod support;

/// Certificates for one test: a server CA and a server certificate for `localhost`, a
/// client CA with a client certificate, and a stranger's certificate from another CA.
struct Pki {
    files: TempFiles,
    server_ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_ca: PathBuf,
    client: (PathBuf, PathBuf),
    stranger: (PathBuf, PathBuf),
}

impl Pki {
    fn new() -> Self {
        let files = TempFiles::new("capstan-engine-tls");
        let (server_ca, client_ca, other_ca) = (
            TestCa::new("server CA"),
            TestCa::new("client CA"),
            TestCa::new("other CA"),
        );
        let server = server_ca.issue("localhost");
        let client = client_ca.issue("capstan-worker");
        let stranger = other_ca.issue("stranger");
        Self {
            server_ca: files.write("server-ca.pem", server_ca.pem()),
            server_cert: files.write("server.pem", &server.cert_pem),
            server_key: files.write("server.key", &server.key_pem),
            client_ca: files.write("client-ca.pem", client_ca.pem()),
            client: (
                files.write("client.pem", &client.cert_pem),
                files.write("client.key", &client.key_pem),
            ),
            stranger: (
                files.write("stranger.pem", &stranger.cert_pem),
                files.write("stranger.key", &stranger.key_pem),
            ),
            files,
        }
    }

    fn engine_tls(&self, mtls: bool) -> EngineTls {
        EngineTls::from_files(
            &self.server_cert,
            &self.server_key,
            mtls.then_some(&self.client_ca),
        )
        .expect("the PEM files are read")
    }

    /// The client side: trusts the server CA, presents `cert` if any.
    fn client_tls(&self, cert: Option<&(PathBuf, PathBuf)>) -> TlsConfig {
        TlsConfig {
            server_root_ca_cert: Some(self.server_ca.clone()),
            domain: Some("localhost".to_owned()),
            client_cert: cert.map(|(c, _)| c.clone()),
            client_private_key: cert.map(|(_, k)| k.clone()),
        }
    }
}

async fn engine(tls: EngineTls) -> Engine {
    Engine::start(EngineOptions {
        tls: Some(tls),
        ..EngineOptions::default()
    })
    .await
    .expect("the engine starts with TLS")
}

async fn refused(address: &str, tls: Option<TlsConfig>, label: &str) -> ClientError {
    let builder = Client::builder(address);
    let builder = match tls {
        Some(tls) => builder.tls(tls),
        None => builder,
    };
    let err = builder
        .connect()
        .await
        .expect_err(&format!("{label}: the engine refuses the client"));
    assert!(
        matches!(err, ClientError::Connect { .. }),
        "{label}: {err:?}"
    );
    assert!(err.to_string().contains(address), "{label}: {err}");
    err
}

#[tokio::test]
async fn mtls_runs_a_workflow_with_the_right_client_certificate() {
    let pki = Pki::new();
    let engine = engine(pki.engine_tls(true)).await;
    let client = Client::builder(engine.address())
        .tls(pki.client_tls(Some(&pki.client)))
        .connect()
        .await
        .expect("the client certificate is accepted");
    let queue = "engine-mtls".to_owned();
    let report = worker(&client, &queue)
        .run_until(tour::run(&client, &queue, "activity-choice", &queue))
        .await
        .expect("the worker runs over mTLS");
    assert!(report.ok, "{report:?}");
    engine.shutdown().await;
}

#[tokio::test]
async fn mtls_refuses_no_certificate_and_another_cas_certificate() {
    let pki = Pki::new();
    let engine = engine(pki.engine_tls(true)).await;
    let address = engine.address();
    refused(
        &address,
        Some(pki.client_tls(None)),
        "without a client certificate",
    )
    .await;
    refused(
        &address,
        Some(pki.client_tls(Some(&pki.stranger))),
        "with another CA's certificate",
    )
    .await;
    // The right certificate still works after the refusals.
    Client::builder(&address)
        .tls(pki.client_tls(Some(&pki.client)))
        .connect()
        .await
        .expect("the client certificate is accepted");
    engine.shutdown().await;
}

#[tokio::test]
async fn tls_without_a_client_ca_serves_clients_trusting_the_server_ca() {
    let pki = Pki::new();
    let engine = engine(pki.engine_tls(false)).await;
    let client = Client::builder(engine.address())
        .tls(pki.client_tls(None))
        .connect()
        .await
        .expect("a TLS client without a certificate is served");
    let queue = "engine-tls".to_owned();
    let report = worker(&client, &queue)
        .run_until(tour::run(&client, &queue, "activity-choice", &queue))
        .await
        .expect("the worker runs over TLS");
    assert!(report.ok, "{report:?}");

    // A client that does not trust the server's CA refuses the engine.
    let mut untrusting = pki.client_tls(None);
    untrusting.server_root_ca_cert = Some(pki.client_ca.clone());
    refused(&engine.address(), Some(untrusting), "trusting another CA").await;
    engine.shutdown().await;
}

#[tokio::test]
async fn a_plaintext_client_fails_clearly_against_tls() {
    let pki = Pki::new();
    for mtls in [false, true] {
        let engine = engine(pki.engine_tls(mtls)).await;
        let started = std::time::Instant::now();
        let err = refused(&engine.address(), None, "a plaintext client").await;
        // The engine answers plaintext HTTP/2 with a GOAWAY the client reports.
        assert!(err.to_string().contains("serves TLS only"), "{err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(9),
            "refused promptly, not by the connect timeout: {:?}",
            started.elapsed()
        );
        engine.shutdown().await;
    }
}

#[tokio::test]
async fn pem_file_errors_name_the_file() {
    let pki = Pki::new();
    let missing = pki.files.dir().join("missing.key");
    let err = EngineTls::from_files(&pki.server_cert, &missing, None::<PathBuf>).unwrap_err();
    assert!(matches!(err, EngineError::TlsFile { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.key"), "{err}");

    // A key where the client CA belongs: the file is named.
    let err = EngineTls::from_files(&pki.server_cert, &pki.server_key, Some(&pki.server_key))
        .unwrap_err();
    assert!(err.to_string().contains("server.key"), "{err}");
    assert!(err.to_string().contains("client CA"), "{err}");

    // A certificate that does not match its key: the engine does not start.
    let mismatched = EngineTls {
        key_pem: std::fs::read(&pki.client.1).unwrap(),
        ..pki.engine_tls(true)
    };
    let err = Engine::start(EngineOptions {
        tls: Some(mismatched),
        ..EngineOptions::default()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, EngineError::Tls(_)), "{err:?}");
}

#[tokio::test]
async fn the_binary_serves_mtls_with_the_flags() {
    let pki = Pki::new();
    let (mut child, address) = support::spawn_binary([
        "--port".as_ref(),
        "0".as_ref(),
        "--tls-cert".as_ref(),
        pki.server_cert.as_os_str(),
        "--tls-key".as_ref(),
        pki.server_key.as_os_str(),
        "--tls-client-ca".as_ref(),
        pki.client_ca.as_os_str(),
    ]);
    let accepted = Client::builder(&address)
        .tls(pki.client_tls(Some(&pki.client)))
        .connect()
        .await;
    let without = Client::builder(&address)
        .tls(pki.client_tls(None))
        .connect()
        .await;
    child.kill().unwrap();
    child.wait().unwrap();
    accepted.expect("the client certificate is accepted");
    assert!(
        matches!(without, Err(ClientError::Connect { .. })),
        "{without:?}"
    );

    // A missing file: the binary names it and exits with an error.
    let output = Command::new(env!("CARGO_BIN_EXE_capstan-engine"))
        .args(["--port", "0", "--tls-cert"])
        .arg(&pki.server_cert)
        .args(["--tls-key", "/nonexistent/engine.key"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/engine.key"), "{stderr}");

    // Half the pair: a usage error.
    let output = Command::new(env!("CARGO_BIN_EXE_capstan-engine"))
        .args(["--port", "0", "--tls-cert"])
        .arg(&pki.server_cert)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--tls-key"), "{stderr}");
}
