//! mTLS from the client and the worker: a server that requires client certificates (a
//! TLS terminator in front of the real Temporal dev server, whose `start-dev` has no TLS
//! flags) accepts Capstan with the right certificate and refuses it without one or with
//! one from another CA. Certificates are generated at run time, never stored in source.
#![cfg(feature = "testing")]

use std::{sync::Arc, time::Duration};

use capstan::{
    prelude::*,
    testing::{DevServer, TempFiles, TestCa, TestCert},
    ClientError, TlsConfig,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Terminates TLS, requiring a client certificate signed by `client_ca`, and forwards the
/// bytes to `upstream`. Returns its address.
async fn mtls_terminator(server_ca: &TestCa, client_ca: &TestCa, upstream: String) -> String {
    let server = server_ca.issue("localhost");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let client_ca_der =
        rustls::pki_types::pem::PemObject::from_pem_slice(client_ca.pem().as_bytes()).unwrap();
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
            vec![CertificateDer::from(server.cert_der)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server.key_der)),
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
    let (server_ca, client_ca, other_ca) = (
        TestCa::new("server CA"),
        TestCa::new("client CA"),
        TestCa::new("another CA"),
    );
    let address = mtls_terminator(&server_ca, &client_ca, server.address()).await;
    let files = TempFiles::new("capstan-mtls");
    let server_ca_file = files.write("server-ca.pem", server_ca.pem());
    let (client_cert, stranger_cert) = (
        client_ca.issue("capstan-worker"),
        other_ca.issue("stranger"),
    );
    let tls = |cert: Option<&TestCert>, tag: &str| TlsConfig {
        server_root_ca_cert: Some(server_ca_file.clone()),
        domain: Some("localhost".to_owned()),
        client_cert: cert.map(|c| files.write(&format!("{tag}.pem"), &c.cert_pem)),
        client_private_key: cert.map(|c| files.write(&format!("{tag}.key"), &c.key_pem)),
    };

    // The right certificate: client and worker run a workflow through the mTLS endpoint.
    let client = Client::builder(&address)
        .tls(tls(Some(&client_cert), "client"))
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
            tls(Some(&stranger_cert), "stranger"),
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
        client_cert: Some(files.dir().join("nope.pem")),
        client_private_key: Some(files.dir().join("nope.key")),
        ..TlsConfig::default()
    };
    let err = Client::builder(&address)
        .tls(missing)
        .connect()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nope.pem"), "{err}");
}
