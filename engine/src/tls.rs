//! TLS and mTLS serving: the engine's certificate and key, and an optional client CA.

use std::{
    fmt, io,
    path::{Path, PathBuf},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_stream::{wrappers::ReceiverStream, Stream};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::EngineError;

/// How long a client may take to finish the TLS handshake before it is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The engine's TLS identity, and optionally the CA its clients' certificates must be
/// signed by (mTLS). With it in [`EngineOptions::tls`](crate::EngineOptions::tls) the
/// engine serves TLS only.
#[derive(Clone)]
pub struct EngineTls {
    /// The server's certificate chain, PEM (leaf first).
    pub cert_pem: Vec<u8>,
    /// The server's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: Vec<u8>,
    /// With a CA certificate (PEM), clients must present a certificate signed by it;
    /// others are refused during the handshake. Without, any TLS client is served.
    pub client_ca_pem: Option<Vec<u8>>,
}

impl fmt::Debug for EngineTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineTls")
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .field("key_pem", &"<redacted>")
            .field("mtls", &self.client_ca_pem.is_some())
            .finish()
    }
}

impl EngineTls {
    /// Reads the server certificate, its key and optionally a client CA from PEM files.
    /// An error names the file that is missing or holds no PEM of the expected kind.
    pub fn from_files(
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
        client_ca: Option<impl AsRef<Path>>,
    ) -> Result<Self, EngineError> {
        let cert_pem = read(cert.as_ref(), "TLS certificate", "CERTIFICATE-----")?;
        let key_pem = read(key.as_ref(), "TLS private key", "PRIVATE KEY-----")?;
        let client_ca_pem = client_ca
            .map(|path| read(path.as_ref(), "TLS client CA", "CERTIFICATE-----"))
            .transpose()?;
        Ok(Self {
            cert_pem,
            key_pem,
            client_ca_pem,
        })
    }

    /// tonic's server configuration: TLS 1.2/1.3 with ALPN `h2`, client certificates
    /// required when there is a client CA.
    pub(crate) fn server_config(&self) -> ServerTlsConfig {
        let config = ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .timeout(HANDSHAKE_TIMEOUT);
        match &self.client_ca_pem {
            Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
            None => config,
        }
    }
}

fn read(path: &Path, what: &'static str, marker: &str) -> Result<Vec<u8>, EngineError> {
    let file_error = |message: String| EngineError::TlsFile {
        what,
        path: PathBuf::from(path),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| file_error(e.to_string()))?;
    if !String::from_utf8_lossy(&bytes).contains(marker) {
        return Err(file_error(format!("no `-----BEGIN …{marker}` PEM block")));
    }
    Ok(bytes)
}

/// The error chain of a failed TLS setup, for [`EngineError::Tls`].
pub(crate) fn describe(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    message
}

/// Accepted connections for a TLS server, with TCP_NODELAY set. A client speaking
/// plaintext HTTP/2 (a gRPC client without TLS) is not handed to the TLS handshake, which
/// would only break its pipe: it gets an HTTP/2 `GOAWAY` (`INADEQUATE_SECURITY`) saying
/// the engine serves TLS only, which gRPC clients include in their error. Each
/// connection is screened in its own task, so a silent client holds up no one.
pub(crate) fn incoming(
    listener: TcpListener,
) -> impl Stream<Item = io::Result<TcpStream>> + Send + 'static {
    let (tx, rx) = mpsc::channel::<io::Result<TcpStream>>(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                // The server stopped: release the port.
                () = tx.closed() => return,
            };
            match accepted {
                Ok((stream, _)) => {
                    // Without TCP_NODELAY a small answer can wait ~40 ms for the peer's
                    // delayed ack.
                    let _ = stream.set_nodelay(true);
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        if let Some(stream) = screen(stream).await {
                            let _ = tx.send(Ok(stream)).await;
                        }
                    });
                }
                Err(e) => {
                    if tx.send(Err(e)).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    ReceiverStream::new(rx)
}

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// The connection if it may be a TLS client; `None` (after answering a plaintext HTTP/2
/// client) otherwise.
async fn screen(mut stream: TcpStream) -> Option<TcpStream> {
    let mut first = [0u8; 1];
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] == TLS_HANDSHAKE => Some(stream),
        Ok(Ok(1)) if first[0] == b'P' => {
            refuse_plaintext_h2(&mut stream).await;
            None
        }
        // Anything else fails the handshake with a TLS alert.
        Ok(Ok(1)) => Some(stream),
        _ => None,
    }
}

async fn refuse_plaintext_h2(stream: &mut TcpStream) {
    const DEBUG: &[u8] = b"capstan-engine serves TLS only: connect with TLS \
        (a server CA, and a client certificate if the engine requires one)";
    let mut frames = Vec::with_capacity(9 + 17 + DEBUG.len());
    // An empty SETTINGS frame, then GOAWAY(last stream 0, INADEQUATE_SECURITY, DEBUG).
    frames.extend_from_slice(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0]);
    let length = u32::try_from(8 + DEBUG.len()).unwrap_or(0).to_be_bytes();
    frames.extend_from_slice(&[length[1], length[2], length[3], 0x7, 0, 0, 0, 0, 0]);
    frames.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0xc]);
    frames.extend_from_slice(DEBUG);
    let exchange = async {
        stream.write_all(&frames).await?;
        stream.shutdown().await?;
        // Drain what the client sends until it closes, so that closing does not reset
        // the connection before the client has read the GOAWAY.
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        io::Result::Ok(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), exchange).await;
}
