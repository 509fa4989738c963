//! Authenticate using mTLS: client and worker present a client certificate, and the server
//! refuses anyone without one signed by its client CA. Certificates and keys are read from
//! files, never from source.

use std::path::{Path, PathBuf};

use capstan::{prelude::*, TlsConfig};
use serde_json::{json, Value};

use crate::tour::workflow_id;

/// The seed's workflow: it runs only for authenticated workers.
#[workflow]
#[derive(Default)]
pub struct SecureWorkflow;

#[workflow]
impl SecureWorkflow {
    #[run]
    pub async fn run(_ctx: WorkflowContext<Self>, data: String) -> WorkflowResult<String> {
        Ok(format!("Securely processed: {data}"))
    }
}

/// The seed's `create_secure_client`: mTLS with a client certificate and key, and the CA
/// that signed the server's certificate.
pub async fn create_secure_client(
    address: &str,
    server_root_ca_cert: Option<PathBuf>,
    client_cert: PathBuf,
    client_key: PathBuf,
) -> Result<Client, capstan::ClientError> {
    Client::builder(address)
        .tls(TlsConfig {
            server_root_ca_cert,
            domain: Some("localhost".to_owned()),
            client_cert: Some(client_cert),
            client_private_key: Some(client_key),
        })
        .connect()
        .await
}

/// Throwaway certificates for the tour, written as PEM files to `dir`: a CA, a server
/// certificate for `localhost` and a client certificate, both signed by the CA.
pub struct Certificates {
    /// The CA certificate (trusted by both sides).
    pub ca: PathBuf,
    /// The server's certificate and key.
    pub server: (PathBuf, PathBuf),
    /// The client's certificate and key.
    pub client: (PathBuf, PathBuf),
}

impl Certificates {
    /// Generates them (with [`capstan::testing::TestCa`]) into `dir`.
    pub fn generate(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let write = |name: &str, text: &str| -> anyhow::Result<PathBuf> {
            let path = dir.join(name);
            std::fs::write(&path, text)?;
            Ok(path)
        };
        let ca = capstan::testing::TestCa::new("Capstan tour CA");
        let leaf = |name: &str, host: &str| -> anyhow::Result<(PathBuf, PathBuf)> {
            let cert = ca.issue(host);
            Ok((
                write(&format!("{name}.pem"), &cert.cert_pem)?,
                write(&format!("{name}.key"), &cert.key_pem)?,
            ))
        };
        Ok(Self {
            ca: write("ca.pem", ca.pem())?,
            server: leaf("server", "localhost")?,
            client: leaf("client", "capstan-worker")?,
        })
    }
}

/// The tour's driver: an engine of its own that requires client certificates, with
/// throwaway certificates in files (the tour's client is not used); a worker and client
/// with a certificate run `SecureWorkflow`, a client without one is refused.
pub async fn tour(_client: &Client, task_queue: &str, run_id: &str) -> anyhow::Result<Value> {
    let dir = std::env::temp_dir().join(format!("capstan-tour-mtls-{run_id}"));
    let certs = Certificates::generate(&dir)?;
    let tls =
        capstan_engine::EngineTls::from_files(&certs.server.0, &certs.server.1, Some(&certs.ca))?;
    let engine = capstan_engine::Engine::start(capstan_engine::EngineOptions {
        tls: Some(tls),
        ..Default::default()
    })
    .await?;
    let secure = create_secure_client(
        &engine.address(),
        Some(certs.ca.clone()),
        certs.client.0.clone(),
        certs.client.1.clone(),
    )
    .await?;
    let queue = format!("{task_queue}-secure");
    let result = Worker::new(&secure, &queue)
        .register_workflow::<SecureWorkflow>()
        .run_until(
            SecureWorkflow::execute(&secure, workflow_id("secure", run_id), "payload".to_owned())
                .task_queue(&queue),
        )
        .await??;
    let refused = Client::builder(engine.address())
        .tls(TlsConfig {
            server_root_ca_cert: Some(certs.ca.clone()),
            domain: Some("localhost".to_owned()),
            ..Default::default()
        })
        .connect()
        .await
        .err()
        .map(|e| e.to_string());
    std::fs::remove_dir_all(&dir)?;
    anyhow::ensure!(
        result == "Securely processed: payload",
        "unexpected {result:?}"
    );
    anyhow::ensure!(
        refused.is_some(),
        "a client without a certificate was let in"
    );
    Ok(json!({ "result": result, "without_certificate": refused }))
}
