//! The Capstan embedded engine: Temporal's gRPC `WorkflowService` (and its HTTP API), served in-process.
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
//! | [`Engine`] (`lib.rs`), `tls`, `auth`, `health`, `simulation` | starting and stopping the server; the API key; the gRPC health service; the simulator's hooks | hold any policy |
//! | `web_ui` | the Temporal Web UI: its files, settings and CSRF guard, over the HTTP API | hold any policy |
//! | `http/` | Temporal's HTTP API: routes from the services' `google.api.http` bindings, protojson, each call made in-process to the gRPC services | serve what gRPC does not |
//! | `service/` | one file per RPC area: decode, validate, one store transaction | decide what a request does |
//! | `timer_service` | sleeping until the next deadline, firing it in a transaction | decide what a deadline does |
//! | `store/` | the lock, transactions, SQLite, group commit, long-poll wake-ups | know what a run is beyond its rows |
//! | `state/` | all runs and schedules; transitions that cross runs; dispatch; firing deadlines | touch tokio, SQLite or the network |
//! | `run/` | one run's state machine, split by concept; `Run::deadlines` | touch another run, a queue or a timer |
//! | `matching/`, `timers/`, `schedules/`, `visibility`, `search_attributes`, `event_log`, `clock`, `errors`, `pb`, `proto` | data and pure logic: queues and tokens, the timer wheel, schedule specs, list queries, search attributes' types and values, encoded events, time, error wording | import anything above |
//!
//! A request flows down once: the service validates, the store opens a transaction, the
//! state applies the transition to a run, the run appends events and records effects, the
//! store commits (waiting for the disk in durable mode), then wakes exactly the waiters
//! whose topics the transaction touched. A restart rebuilds the queues and deadlines with
//! the functions the live path uses.

#![warn(missing_docs)]

mod auth;
mod clock;
mod errors;
mod event_log;
mod health;
mod http;
mod limits;
mod matching;
mod pb;
mod proto;
mod recent_requests;
mod run;
mod schedules;
mod search_attributes;
mod service;
#[cfg(feature = "simulation")]
pub mod simulation;
mod state;
mod store;
mod timer_service;
mod timers;
mod tls;
mod validate;
mod visibility;
mod web_ui;

pub use limits::Limits;
pub use tls::EngineTls;
pub use web_ui::{
    default_dir as web_ui_default_dir, WebUiOptions, BUILD_COMMAND as WEB_UI_BUILD_COMMAND,
};

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::SystemTime,
};

use tokio::{sync::oneshot, task::JoinHandle};
use tonic::codec::CompressionEncoding;

/// How to start an [`Engine`].
#[derive(Clone)]
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
    /// An API key every `WorkflowService` call must carry as `authorization: Bearer <key>`
    /// (default `None`: none needed), the header Temporal's SDKs and Capstan's client send
    /// with their API-key option. Others are answered `UNAUTHENTICATED`. The gRPC health
    /// service needs no key. Without TLS the key crosses the network in the clear.
    pub api_key: Option<String>,
    /// Custom search attributes every namespace of [`EngineOptions::namespaces`] has from
    /// the start, `(name, type)`, the type as Temporal names it (`Keyword`, `Text`, `Int`,
    /// `Double`, `Bool`, `Datetime`, `KeywordList`), as `temporal server start-dev
    /// --search-attribute` takes them. Others are added with `OperatorService`'s
    /// `AddSearchAttributes` (`temporal operator search-attribute create`). Kept in the
    /// database, like those.
    pub search_attributes: Vec<(String, String)>,
    /// Serve Temporal's HTTP API (`/api/v1/...`, protojson) on this port of
    /// [`EngineOptions::ip`] too, as `temporal server start-dev --http-port` does (default
    /// `None`: not served; `Some(0)` picks a free port, see [`Engine::http_address`]). Its
    /// calls are the gRPC services' own, with the same API key; it serves no TLS.
    pub http_port: Option<u16>,
    /// Serve the official Temporal Web UI too (default `None`: not served), as `temporal
    /// server start-dev` does on its `--ui-port`; see [`WebUiOptions`]. Served over plain
    /// HTTP: with [`EngineOptions::tls`] the engine refuses to start it.
    pub web_ui: Option<WebUiOptions>,
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOptions")
            .field("ip", &self.ip)
            .field("port", &self.port)
            .field("namespaces", &self.namespaces)
            .field("virtual_clock", &self.virtual_clock)
            .field("tls", &self.tls)
            .field("db", &self.db)
            .field("limits", &self.limits)
            .field("api_key", &self.api_key.as_ref().map(|_| "<hidden>"))
            .field("search_attributes", &self.search_attributes)
            .field("http_port", &self.http_port)
            .field("web_ui", &self.web_ui)
            .finish()
    }
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
            api_key: None,
            limits: Limits::default(),
            search_attributes: Vec::new(),
            http_port: None,
            web_ui: None,
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
    /// A search attribute of [`EngineOptions::search_attributes`] could not be added.
    #[error("cannot add the search attribute {name}: {message}")]
    SearchAttribute {
        /// The attribute's name.
        name: String,
        /// Why.
        message: String,
    },
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
    http_address: Option<SocketAddr>,
    ui_address: Option<SocketAddr>,
    store: Arc<store::Store>,
    stop: Option<oneshot::Sender<()>>,
    /// Tells the HTTP API's and the Web UI's servers to stop.
    side_stop: tokio::sync::watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    side_servers: Vec<JoinHandle<()>>,
    timers: Option<JoinHandle<()>>,
    health: health::Reporter,
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

/// Adds [`EngineOptions::search_attributes`] to every namespace of the options.
async fn register_search_attributes(
    store: &store::Store,
    options: &EngineOptions,
) -> Result<(), EngineError> {
    for (name, kind) in &options.search_attributes {
        let refused = |message: String| EngineError::SearchAttribute {
            name: name.clone(),
            message,
        };
        let kind = search_attributes::parse_type(kind).ok_or_else(|| {
            refused(format!(
                "`{kind}` is not a search attribute type: use Keyword, Text, Int, Double, \
                 Bool, Datetime or KeywordList"
            ))
        })?;
        let added = [(name.clone(), kind as i32)].into();
        let limit = options.limits.custom_search_attributes;
        for namespace in &options.namespaces {
            store
                .transaction(|state| {
                    state.change_search_attributes(namespace, |custom| custom.add(&added, limit))
                })
                .await
                .map_err(|status| refused(status.message().to_owned()))?;
        }
    }
    Ok(())
}

impl Engine {
    /// Binds the address and serves on the current tokio runtime.
    pub async fn start(options: EngineOptions) -> Result<Self, EngineError> {
        let clock = if options.virtual_clock {
            clock::Clock::new_virtual()
        } else {
            clock::Clock::Real
        };
        Self::start_on(options, clock).await
    }

    /// [`Engine::start`] on `clock`.
    async fn start_on(options: EngineOptions, clock: clock::Clock) -> Result<Self, EngineError> {
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
        let (listener, address) = bind(requested).await?;
        let (http_listener, http_address) = match options.http_port {
            Some(port) => {
                let (listener, address) = bind(SocketAddr::new(options.ip, port)).await?;
                (Some(listener), Some(address))
            }
            None => (None, None),
        };
        let (ui_listener, ui_address) = match &options.web_ui {
            Some(_) if options.tls.is_some() => {
                return Err(EngineError::Tls(
                    "the Web UI is served over plain HTTP only: serve it without TLS, or \
                     leave it off (`--headless`)"
                        .to_owned(),
                ))
            }
            Some(ui) => {
                let ip = ui.ip.unwrap_or(options.ip);
                let (listener, address) = bind(SocketAddr::new(ip, ui.port)).await?;
                (Some(listener), Some(address))
            }
            None => (None, None),
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
        register_search_attributes(&store, &options).await?;
        let (health, health_service) = health::Reporter::start(store.clone());
        // Compressed requests and the decoding limit as for the WorkflowService below.
        let operator_service = proto::OperatorServiceServer::new(service::Service {
            store: store.clone(),
        })
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(options.limits.grpc_message_size);
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
        // The health service takes no key: load balancers and orchestrators probe without
        // credentials, and it tells nothing but whether the engine serves.
        let api_key = auth::ApiKey::new(options.api_key.as_deref());
        let operator_service =
            tonic::service::interceptor::InterceptedService::new(operator_service, api_key.clone());
        let service = tonic::service::interceptor::InterceptedService::new(service, api_key);
        let services = tonic::service::Routes::new(service).add_service(operator_service);
        let (stop, stopped) = oneshot::channel::<()>();
        // The HTTP API and the Web UI: both stop when the gRPC server does.
        let (side_stop, _) = tokio::sync::watch::channel(false);
        let stopped_too = |stop: &tokio::sync::watch::Sender<bool>| {
            let mut stopped = stop.subscribe();
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }
        };
        // Built (its descriptors decoded, its routes read) only for an engine that serves
        // HTTP: most engines, every test's, serve gRPC alone.
        let api = (http_listener.is_some() || ui_listener.is_some()).then(|| {
            Arc::new(http::HttpApi::new(
                http::Grpc::new(services.clone()),
                options.limits.grpc_message_size,
            ))
        });
        let mut side_servers = Vec::new();
        if let (Some(listener), Some(api)) = (http_listener, &api) {
            side_servers.push(tokio::spawn(http::serve(
                listener,
                api.clone(),
                stopped_too(&side_stop),
            )));
        }
        if let (Some(listener), Some(ui), Some(api)) = (ui_listener, &options.web_ui, api) {
            let ui = web_ui::WebUi::new(api, ui, options.api_key.clone());
            side_servers.push(tokio::spawn(web_ui::serve(
                listener,
                Arc::new(ui),
                stopped_too(&side_stop),
            )));
        }
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
                .add_routes(services)
                .add_service(health_service)
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
        log_start(&options, address);
        if let Some(http) = http_address {
            tracing::info!("serving Temporal's HTTP API at http://{http}");
        }
        if let Some(ui) = ui_address {
            tracing::info!("serving the Temporal Web UI at http://{ui}");
        }
        Ok(Self {
            address,
            http_address,
            ui_address,
            store,
            stop: Some(stop),
            side_stop,
            server: Some(server),
            side_servers,
            timers: Some(timers),
            health,
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

    /// Where the HTTP API is served (`host:port`), if [`EngineOptions::http_port`] asked
    /// for it.
    pub fn http_address(&self) -> Option<String> {
        self.http_address.map(|a| a.to_string())
    }

    /// Where the Web UI is served (`host:port`), if [`EngineOptions::web_ui`] asked for it.
    pub fn web_ui_address(&self) -> Option<String> {
        self.ui_address.map(|a| a.to_string())
    }

    /// The bound socket address.
    pub fn socket_addr(&self) -> SocketAddr {
        self.address
    }

    /// Caps the database file at `pages` pages (`None` lifts the cap): SQLite then answers
    /// writes that need more "database or disk is full", as on a full disk. Nothing in
    /// memory. For tests of how the engine weathers a full disk.
    #[doc(hidden)]
    pub fn test_limit_db_pages(&self, pages: Option<u64>) {
        self.store.limit_db_pages(pages);
    }

    /// Stops accepting calls, answers held long polls, and waits for the server to stop.
    pub async fn shutdown(mut self) {
        self.health.stopping().await;
        self.signal_stop();
        self.stop_server().await;
        // A deadline fired just now may wait for a database that cannot be written; it is
        // then not waited for (its change was acknowledged to no one).
        if let Some(timers) = self.timers.take() {
            finish_within_grace(timers).await;
        }
        self.store.close_db();
        tracing::info!("stopped serving at {}", self.address);
    }

    /// Waits for the server to stop once told to: held polls are answered at once; a
    /// connected client that keeps its idle connection open past the grace is cut off
    /// rather than waited for.
    async fn stop_server(&mut self) {
        if let Some(server) = self.server.take() {
            finish_within_grace(server).await;
        }
        for server in std::mem::take(&mut self.side_servers) {
            finish_within_grace(server).await;
        }
    }

    fn signal_stop(&mut self) {
        self.store.close();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.side_stop.send_replace(true);
    }
}

/// Binds `address` (port 0 picks a free one); answers the listener and its address.
async fn bind(address: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), EngineError> {
    let bound = |source| EngineError::Bind { address, source };
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(bound)?;
    let local = listener.local_addr().map_err(bound)?;
    Ok((listener, local))
}

/// Says where the engine serves, and warns when it is open to the network: bound beyond
/// loopback with neither TLS nor an API key.
fn log_start(options: &EngineOptions, address: SocketAddr) {
    let db = match &options.db {
        Some(path) => format!("database {}", path.display()),
        None => "in memory".to_owned(),
    };
    let tls = match &options.tls {
        Some(tls) if tls.client_ca_pem.is_some() => ", mTLS",
        Some(_) => ", TLS",
        None => "",
    };
    let key = if options.api_key.is_some() {
        ", API key required"
    } else {
        ""
    };
    tracing::info!("serving Temporal's WorkflowService at {address} ({db}{tls}{key})");
    if !options.ip.is_loopback() && options.tls.is_none() && options.api_key.is_none() {
        tracing::warn!(
            "{address} is reachable beyond this machine with neither TLS nor an API key: \
             anyone who reaches it can start, read and delete workflows; give an API key \
             (`--api-key`, CAPSTAN_ENGINE_API_KEY) and TLS (`--tls-cert`, `--tls-key`), or \
             listen on 127.0.0.1"
        );
    }
}

/// Waits [`SHUTDOWN_GRACE`] for `task` to finish, then stops it.
async fn finish_within_grace(mut task: JoinHandle<()>) {
    if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
        .await
        .is_err()
    {
        task.abort();
        let _ = task.await;
    }
}

/// How long a stopping engine waits for its connections to close.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

impl Drop for Engine {
    fn drop(&mut self) {
        self.signal_stop();
    }
}
