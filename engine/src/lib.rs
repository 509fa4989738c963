//! The Capstan embedded engine: Temporal's gRPC `WorkflowService`, served in-process.
//!
//! ```no_run
//! # async fn demo() -> Result<(), capstan_engine::EngineError> {
//! let engine = capstan_engine::Engine::start(Default::default()).await?;
//! println!("Temporal-compatible server at {}", engine.address());
//! // Client::connect(engine.address()) and a worker on the same address…
//! engine.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! sdk-core, any Temporal SDK and the `temporal` CLI talk to it over the same gRPC API
//! as to a Temporal cluster.
//!
//! # Layers
//!
//! Each layer imports only the ones below it (`engine/tests/layers.rs` checks it):
//!
//! | layer | owns | may not |
//! |---|---|---|
//! | [`Engine`] (`lib.rs`), `tls` | starting and stopping the server | hold any policy |
//! | `service/` | one file per RPC area: decode, validate, one store transaction | decide what a request does |
//! | `timer_service` | sleeping until the next deadline, firing it in a transaction | decide what a deadline does |
//! | `store/` | the lock, transactions, SQLite, group commit, long-poll wake-ups | know what a run is beyond its rows |
//! | `state/` | all runs and schedules; transitions that cross runs; dispatch; firing deadlines | touch tokio, SQLite or the network |
//! | `run/` | one run's state machine, split by concept; `Run::deadlines` | touch another run, a queue or a timer |
//! | `matching/`, `timers/`, `schedules/`, `visibility`, `event_log`, `clock`, `errors`, `pb`, `proto` | data and pure logic: queues and tokens, the timer wheel, schedule specs, list queries, encoded events, time, error wording | import anything above |
//!
//! A request flows down once: the service validates, the store opens a transaction, the
//! state applies the transition to a run, the run appends events and records effects, the
//! store commits (waiting for the disk in durable mode), then wakes exactly the waiters
//! whose topics the transaction touched. A restart rebuilds the queues and deadlines with
//! the functions the live path uses.

#![warn(missing_docs)]

mod clock;
mod errors;
mod event_log;
mod limits;
mod matching;
mod pb;
mod proto;
mod run;
mod schedules;
mod service;
mod state;
mod store;
mod timer_service;
mod timers;
mod tls;
mod validate;
mod visibility;

pub use limits::Limits;
pub use tls::EngineTls;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::SystemTime,
};

use tokio::{sync::oneshot, task::JoinHandle};
use tonic::codec::CompressionEncoding;

/// How to start an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The address to listen on (default loopback).
    pub ip: IpAddr,
    /// The port to listen on; 0 (the default) picks a free one.
    pub port: u16,
    /// Namespaces that exist from the start (default `["default"]`).
    pub namespaces: Vec<String>,
    /// Run on a virtual clock (default `false`): time starts at the real time, stands
    /// still while work progresses, and jumps straight to the earliest timer (user timers,
    /// retry backoffs, timeouts) whenever no workflow task, activity task, query or update
    /// is pending or held by a worker. A workflow that sleeps two years completes in
    /// milliseconds. For tests.
    pub virtual_clock: bool,
    /// Serve TLS (default `None`: plaintext). With [`EngineTls::client_ca_pem`], only
    /// clients presenting a certificate signed by that CA are served (mTLS).
    pub tls: Option<EngineTls>,
    /// What the engine accepts, per request and per run (default: Temporal's defaults),
    /// including from when workflow tasks suggest continue-as-new.
    pub limits: Limits,
    /// A SQLite file that keeps the engine's state (default `None`: in memory). Created if
    /// missing; an existing file's workflows resume where they were: timers, queued and
    /// timed-out tasks, histories and results.
    pub db: Option<PathBuf>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            namespaces: vec!["default".to_owned()],
            virtual_clock: false,
            tls: None,
            db: None,
            limits: Limits::default(),
        }
    }
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A TLS certificate, key or client CA file could not be read or holds no PEM.
    #[error("cannot use the {what} file {}: {message}", path.display())]
    TlsFile {
        /// Which file: `TLS certificate`, `TLS private key` or `TLS client CA`.
        what: &'static str,
        /// The file's path.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The TLS certificate, key or client CA could not be used.
    #[error("bad TLS configuration: {0}")]
    Tls(String),
    /// The database file could not be opened or read.
    #[error("cannot use the database {}: {message}", path.display())]
    Db {
        /// The file's path.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// The accepted connections the server is given.
type Incoming = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> + Send>,
>;

/// A running engine. Stops when dropped or on [`shutdown`](Self::shutdown).
pub struct Engine {
    address: SocketAddr,
    store: Arc<store::Store>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    timers: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// The engine's HTTP/2 connection receive window (see [`Engine::start`]).
const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

impl Engine {
    /// Binds the address and serves on the current tokio runtime.
    pub async fn start(options: EngineOptions) -> Result<Self, EngineError> {
        // TLS material is checked before anything is bound.
        // A wide connection window: besides flow control, h2 sizes from it how many small
        // DATA frames (a gRPC request each) may wait unread on one connection before it
        // calls the peer abusive and closes it. At the default 64 KiB that was ~200, and a
        // client with thousands of result long-polls open on one connection lost it.
        let mut builder =
            tonic::transport::Server::builder().initial_connection_window_size(CONNECTION_WINDOW);
        if let Some(tls) = &options.tls {
            builder = builder
                .tls_config(tls.server_config())
                .map_err(|e| EngineError::Tls(tls::describe(&e)))?;
        }
        let requested = SocketAddr::new(options.ip, options.port);
        let listener = tokio::net::TcpListener::bind(requested)
            .await
            .map_err(|source| EngineError::Bind {
                address: requested,
                source,
            })?;
        let address = listener.local_addr().map_err(|source| EngineError::Bind {
            address: requested,
            source,
        })?;
        let clock = if options.virtual_clock {
            clock::Clock::new_virtual()
        } else {
            clock::Clock::Real
        };
        let config = run::Config {
            limits: options.limits.clone(),
        };
        let store = store::Store::open(&options.namespaces, clock, config, options.db.as_deref())
            .map_err(|e| EngineError::Db {
            path: options.db.clone().unwrap_or_default(),
            message: e.to_string(),
        })?;
        let store = Arc::new(store);
        let service = proto::WorkflowServiceServer::new(service::Service {
            store: store.clone(),
        })
        // Requests may come gzipped (sdk-core compresses them); answers go uncompressed:
        // the engine serves its own process or a nearby one, where compressing every
        // answer costs more CPU than the bytes it saves (a profile of the one-activity
        // benchmark put gzip at about a seventh of the engine process's time).
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(options.limits.grpc_message_size)
        .max_encoding_message_size(256 * 1024 * 1024);
        let (stop, stopped) = oneshot::channel::<()>();
        let incoming: Incoming = if options.tls.is_some() {
            // tonic runs each TLS handshake in its own task (bounded by a timeout) and
            // drops connections whose handshake fails: a client without an acceptable
            // certificate never reaches the service.
            Box::pin(tls::incoming(listener))
        } else {
            // Without TCP_NODELAY a small answer can wait ~40 ms for the peer's delayed
            // ack.
            Box::pin(tokio_stream::StreamExt::map(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                |stream| {
                    stream.inspect(|s| {
                        let _ = s.set_nodelay(true);
                    })
                },
            ))
        };
        let server = tokio::spawn(async move {
            let result = builder
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = result {
                tracing::error!("capstan-engine server stopped: {e}");
            }
        });
        let timers = tokio::spawn(timer_service::run(store.clone()));
        // Backfills the engine was taking when it stopped go on.
        for key in store.apply(|state| state.schedules_with_backfills()).0 {
            tokio::spawn(service::take_backfills(store.clone(), key));
        }
        Ok(Self {
            address,
            store,
            stop: Some(stop),
            server: Some(server),
            timers: Some(timers),
        })
    }

    /// `host:port` to give `Client::connect` or a Temporal SDK (with TLS options when
    /// the engine serves TLS).
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// The engine's current time: the system time, or the virtual clock's reading.
    pub fn now(&self) -> SystemTime {
        self.store.apply(|state| state.now).0
    }

    /// The bound socket address.
    pub fn socket_addr(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting calls, answers held long polls, and waits for the server to stop.
    pub async fn shutdown(mut self) {
        self.signal_stop();
        if let Some(mut server) = self.server.take() {
            // Held polls are answered at once; a connected client that keeps its idle
            // connection open past the grace is cut off rather than waited for.
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
                .await
                .is_err()
            {
                server.abort();
                let _ = server.await;
            }
        }
        if let Some(timers) = self.timers.take() {
            let _ = timers.await;
        }
        self.store.close_db();
    }

    fn signal_stop(&mut self) {
        self.store.close();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// How long a stopping engine waits for its connections to close.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

impl Drop for Engine {
    fn drop(&mut self) {
        self.signal_stop();
    }
}
