//! The client: connect to Temporal (or the embedded engine), start workflows, and talk to
//! running ones through typed handles.

mod error;
mod handle;
pub mod schedule;
mod start;
mod update_with_start;

/// History events, as [`WorkflowHandle::history`] returns them.
pub mod history {
    pub use temporalio_common::protos::temporal::api::{
        common::v1::{Payload, Payloads},
        enums::v1::EventType,
        history::v1::{history_event::Attributes, HistoryEvent},
    };
}

use std::{fmt, path::PathBuf, sync::Arc};

pub use error::ClientError;
pub use handle::{
    UpdateHandle, WorkflowDescription, WorkflowExecutionStatus, WorkflowHandle, WorkflowSummary,
};
pub use start::{ExecuteWorkflow, StartWorkflow};
use temporalio_client::{
    grpc::WorkflowService, ClientTlsOptions, Connection, ConnectionOptions, GrpcCompression,
    TlsOptions,
};
use temporalio_common::protos::temporal::api::workflowservice::v1::DescribeNamespaceRequest;
pub use update_with_start::{UpdateCall, UpdateWithStart};

use crate::converter::{Codecs, PayloadCodec};

/// A connection to a Temporal server and a namespace. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<ClientInner>,
}

pub(crate) struct ClientInner {
    pub(crate) connection: Connection,
    pub(crate) options: ClientOptions,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("address", &self.inner.options.address)
            .field("namespace", &self.inner.options.namespace)
            .finish()
    }
}

/// Where certificates and keys for TLS come from: files, read when connecting.
#[derive(Clone, Debug, Default)]
pub struct TlsConfig {
    /// The CA that signed the server's certificate (default: the system's roots).
    pub server_root_ca_cert: Option<PathBuf>,
    /// The server name to verify (default: the address's host).
    pub domain: Option<String>,
    /// The client certificate, for mTLS.
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key, for mTLS.
    pub client_private_key: Option<PathBuf>,
}

/// How to connect; see [`Client::builder`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    address: String,
    namespace: String,
    identity: String,
    tls: Option<TlsConfig>,
    api_key: Option<String>,
    /// `None`: decided by the address (see [`ClientOptions::gzip`]).
    gzip: Option<bool>,
    pub(crate) codecs: Codecs,
    pub(crate) default_task_queue: Option<String>,
}

impl Client {
    /// Connects to `address` (`host:port`, or a URL) in the `default` namespace.
    pub async fn connect(address: impl Into<String>) -> Result<Self, ClientError> {
        Self::builder(address).connect().await
    }

    /// Options for connecting: namespace, TLS, API key, codecs.
    pub fn builder(address: impl Into<String>) -> ClientOptions {
        ClientOptions {
            address: address.into(),
            namespace: "default".to_owned(),
            identity: format!("{}@{}", std::process::id(), hostname()),
            tls: None,
            api_key: None,
            gzip: None,
            codecs: Codecs::default(),
            default_task_queue: None,
        }
    }

    /// The namespace this client works in.
    pub fn namespace(&self) -> &str {
        &self.inner.options.namespace
    }

    /// The server's address.
    pub fn address(&self) -> &str {
        &self.inner.options.address
    }

    /// The identity sent with every call.
    pub fn identity(&self) -> &str {
        &self.inner.options.identity
    }

    pub(crate) fn codecs(&self) -> &Codecs {
        &self.inner.options.codecs
    }

    pub(crate) fn connection(&self) -> Connection {
        self.inner.connection.clone()
    }

    /// Calls the server, retrying with backoff for a while when it answers that it is
    /// momentarily overloaded (`ResourceExhausted`: too many in-flight updates, a full
    /// query buffer) or unavailable.
    pub(crate) async fn call_retrying<T, F, Fut>(&self, mut call: F) -> Result<T, tonic::Status>
    where
        F: FnMut(Box<dyn WorkflowService>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut delay = std::time::Duration::from_millis(20);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match call(self.inner.connection.workflow_service()).await {
                Err(status)
                    if matches!(
                        status.code(),
                        tonic::Code::ResourceExhausted | tonic::Code::Unavailable
                    ) && std::time::Instant::now() + delay < deadline =>
                {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(1));
                }
                other => return other.map(tonic::Response::into_inner),
            }
        }
    }

    pub(crate) fn default_task_queue(&self) -> Option<&str> {
        self.inner.options.default_task_queue.as_deref()
    }
}

/// Whether `url` names this machine by a loopback address.
fn is_loopback(url: &temporalio_client::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let ip = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || ip
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

impl ClientOptions {
    /// The namespace (default `default`).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The identity sent with every call (default `pid@host`).
    pub fn identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = identity.into();
        self
    }

    /// Connects with TLS; with a client certificate and key, with mTLS.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Authenticates with an API key (turns TLS on).
    pub fn api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = Some(api_key.into());
        self
    }

    /// Whether calls travel gzip-compressed. The default is on, as in Temporal's SDKs,
    /// except to a loopback address (`localhost`, `127.0.0.0/8`, `::1`: the embedded
    /// engine, a local dev server), where compressing costs CPU and saves no time: a
    /// fresh compressor for every message took about 0.4 ms of each one-activity
    /// workflow's 2.8 ms on the engine. Workers share their client's setting.
    pub fn gzip(mut self, on: bool) -> Self {
        self.gzip = Some(on);
        self
    }

    /// Adds a payload codec (encryption, compression), applied to everything this client
    /// sends and receives. Give workers the same codecs.
    pub fn codec(mut self, codec: impl PayloadCodec) -> Self {
        self.codecs.push(Arc::new(codec));
        self
    }

    /// The task queue used when a start call names none.
    pub fn default_task_queue(mut self, task_queue: impl Into<String>) -> Self {
        self.default_task_queue = Some(task_queue.into());
        self
    }

    /// Connects and checks the namespace exists.
    pub async fn connect(self) -> Result<Client, ClientError> {
        let tls = self.tls.as_ref().map(read_tls).transpose()?;
        let scheme = if tls.is_some() || self.api_key.is_some() {
            "https"
        } else {
            "http"
        };
        let url = if self.address.contains("://") {
            self.address.clone()
        } else {
            format!("{scheme}://{}", self.address)
        };
        let url: temporalio_client::Url = url.parse().map_err(|e| {
            ClientError::Config(format!("bad server address `{}`: {e}", self.address))
        })?;
        let connect_err = |message: String| ClientError::Connect {
            address: self.address.clone(),
            message,
        };
        let gzip = self.gzip.unwrap_or_else(|| !is_loopback(&url));
        let options = ConnectionOptions::new(url)
            .identity(self.identity.clone())
            .grpc_compression(if gzip {
                GrpcCompression::Gzip
            } else {
                GrpcCompression::None
            })
            .maybe_tls_options(tls)
            .maybe_api_key(self.api_key.clone())
            .connect_timeout(std::time::Duration::from_secs(10))
            .build();
        let connection = Connection::connect(options)
            .await
            .map_err(|e| connect_err(crate::failure::error_chain(&e)))?;
        let mut service = connection.workflow_service();
        service
            .describe_namespace(tonic::Request::new(DescribeNamespaceRequest {
                namespace: self.namespace.clone(),
                ..Default::default()
            }))
            .await
            .map_err(|status| match status.code() {
                tonic::Code::NotFound => ClientError::Config(format!(
                    "namespace `{}` does not exist on {}",
                    self.namespace, self.address
                )),
                _ => connect_err(status.message().to_owned()),
            })?;
        Ok(Client {
            inner: Arc::new(ClientInner {
                connection,
                options: self,
            }),
        })
    }
}

fn read_tls(config: &TlsConfig) -> Result<TlsOptions, ClientError> {
    let read = |path: &PathBuf, what: &str| {
        std::fs::read(path).map_err(|e| {
            ClientError::Config(format!(
                "cannot read the {what} file {}: {e}",
                path.display()
            ))
        })
    };
    let client_tls_options = match (&config.client_cert, &config.client_private_key) {
        (Some(cert), Some(key)) => Some(
            ClientTlsOptions::builder()
                .client_cert(read(cert, "client certificate")?)
                .client_private_key(read(key, "client private key")?)
                .build(),
        ),
        (None, None) => None,
        _ => {
            return Err(ClientError::Config(
                "mTLS needs both a client certificate and its private key".to_owned(),
            ))
        }
    };
    Ok(TlsOptions::builder()
        .maybe_server_root_ca_cert(
            config
                .server_root_ca_cert
                .as_ref()
                .map(|p| read(p, "server CA certificate"))
                .transpose()?,
        )
        .maybe_domain(config.domain.clone())
        .maybe_client_tls_options(client_tls_options)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_to_this_machine_go_uncompressed_by_default() {
        let loopback = |address: &str| is_loopback(&address.parse().expect("a URL"));
        assert!(loopback("http://127.0.0.1:7233"));
        assert!(loopback("http://127.8.9.10:7233"));
        assert!(loopback("http://localhost:7233"));
        assert!(loopback("https://LOCALHOST"));
        assert!(loopback("http://[::1]:7233"));
        assert!(!loopback("http://10.0.0.7:7233"));
        assert!(!loopback("https://my-ns.tmprl.cloud:7233"));
        assert!(!loopback("http://[2001:db8::1]:7233"));
    }
}
