//! mTLS from the client and the worker: a server that requires client certificates (a
//! TLS terminator in front of the real Temporal dev server, whose `start-dev` has no TLS
//! flags) accepts Capstan with the right certificate and refuses it without one or with
//! one from another CA. Certificates are generated at run time, never stored in source.
#![cfg(feature = "testing")]

use std::{path::PathBuf, sync::Arc, time::Duration};

use capstan::{prelude::*, testing::DevServer, ClientError, TlsConfig};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A certificate for `name` signed by `ca`: (certificate PEM, certificate DER, key).
fn leaf(ca: &Ca, name: &str) -> (String, CertificateDer<'static>, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), cert.der().clone(), key)
}

/// Terminates TLS, requiring a client certificate signed by `client_ca`, and forwards the
/// bytes to `upstream`. Returns its address.
async fn mtls_terminator(server_ca: &Ca, client_ca: &Ca, upstream: String) -> String {
    let (_, server_der, server_key) = leaf(server_ca, "localhost");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let client_ca_der =
        rustls::pki_types::pem::PemObject::from_pem_slice(client_ca.pem.as_bytes()).unwrap();
    roots.add(client_ca_der).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![server_der],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
            tokio::spawn(async move {
                // A client without an acceptable certificate fails here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
            });
        }
    });
    format!("127.0.0.1:{}", address.port())
}

struct Files(PathBuf);

impl Files {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("capstan-mtls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[activity]
pub async fn secure_echo(text: String) -> Result<String, ActivityError> {
    Ok(format!("secure: {text}"))
}

#[workflow]
#[derive(Default)]
pub struct SecureWorkflow;

#[workflow]
impl SecureWorkflow {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>, text: String) -> WorkflowResult<String> {
        Ok(ctx
            .activity(secure_echo, text)
            .start_to_close_timeout(Duration::from_secs(10))
            .await?)
    }
}

#[tokio::test]
async fn mtls_admits_the_right_certificate_only() {
    let server = DevServer::shared().await;
    let (server_ca, client_ca, other_ca) = (ca("server CA"), ca("client CA"), ca("another CA"));
    let address = mtls_terminator(&server_ca, &client_ca, server.address()).await;
    let files = Files::new();
    let server_ca_file = files.write("server-ca.pem", &server_ca.pem);
    let (client_pem, _, client_key) = leaf(&client_ca, "capstan-worker");
    let (stranger_pem, _, stranger_key) = leaf(&other_ca, "stranger");
    let tls = |cert: Option<(&str, &KeyPair)>, tag: &str| TlsConfig {
        server_root_ca_cert: Some(server_ca_file.clone()),
        domain: Some("localhost".to_owned()),
        client_cert: cert.map(|(pem, _)| files.write(&format!("{tag}.pem"), pem)),
        client_private_key: cert
            .map(|(_, key)| files.write(&format!("{tag}.key"), &key.serialize_pem())),
    };

    // The right certificate: client and worker run a workflow through the mTLS endpoint.
    let client = Client::builder(&address)
        .tls(tls(Some((&client_pem, &client_key)), "client"))
        .connect()
        .await
        .expect("the client certificate is accepted");
    let tq = capstan::testing::unique_task_queue("mtls");
    let result = Worker::new(&client, &tq)
        .register_workflow::<SecureWorkflow>()
        .register_activity(secure_echo)
        .run_until(
            SecureWorkflow::execute(&client, format!("mtls-{tq}"), "hello".to_owned())
                .task_queue(&tq),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result, "secure: hello");

    // No certificate, or one from another CA: refused, with the address in the error.
    for (label, config) in [
        ("without a certificate", tls(None, "none")),
        (
            "with another CA's certificate",
            tls(Some((&stranger_pem, &stranger_key)), "stranger"),
        ),
    ] {
        let err = Client::builder(&address)
            .tls(config)
            .connect()
            .await
            .unwrap_err();
        assert!(
            matches!(err, ClientError::Connect { .. }),
            "{label}: {err:?}"
        );
        assert!(err.to_string().contains(&address), "{label}: {err}");
    }

    // A missing file is named.
    let missing = TlsConfig {
        client_cert: Some(files.0.join("nope.pem")),
        client_private_key: Some(files.0.join("nope.key")),
        ..TlsConfig::default()
    };
    let err = Client::builder(&address)
        .tls(missing)
        .connect()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nope.pem"), "{err}");
}
