//! The official Temporal Web UI, served by the engine as `temporal server start-dev`'s UI
//! server serves it: the built UI's files (any other path is the app's `index.html`), its
//! `/api/v1/settings`, and Temporal's HTTP API under `/api/v1/` in the UI server's dialect
//! ([`http::Dialect::Ui`]), each write guarded by the `_csrf` cookie echoed in the
//! `X-CSRF-TOKEN` header. With an API key the whole UI asks for it (HTTP Basic, the key as
//! the password) and its calls carry it.
//!
//! The UI itself is built from `engine/web-ui/` (`python3 engine/web-ui/build.py`); until it
//! is, every page says how to build it.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use axum::body::Body;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};

use crate::http::{Dialect, HttpApi};

/// The `@temporalio/ui` release the shell in `engine/web-ui/` pins, reported as the UI's
/// version (the UI reads it to choose how to encode paths: 2.23 and later).
const UI_VERSION: &str = "2.38.0";

/// How to serve the Web UI.
#[derive(Debug, Clone, Default)]
pub struct WebUiOptions {
    /// The port (0 picks a free one).
    pub port: u16,
    /// The address to listen on (default: the engine's [`crate::EngineOptions::ip`]).
    pub ip: Option<std::net::IpAddr>,
    /// The built UI (default: [`default_dir`]).
    pub dir: Option<PathBuf>,
    /// A codec server the UI sends payloads to for decoding (Capstan's `CodecServer`, or
    /// any Temporal codec server), as the UI's `Codec.Endpoint` setting.
    pub codec_endpoint: Option<String>,
}

/// Where `python3 engine/web-ui/build.py` puts the built UI: `$CAPSTAN_WEB_UI_DIR`, else
/// `web-ui` in `$CAPSTAN_TOOLS_DIR`, else in this workspace's `target/capstan-tools`.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CAPSTAN_WEB_UI_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let tools = std::env::var_os("CAPSTAN_TOOLS_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/capstan-tools"));
    tools.join("web-ui")
}

/// The command that builds the UI.
pub const BUILD_COMMAND: &str = "python3 engine/web-ui/build.py";

/// The UI server's state.
pub(crate) struct WebUi {
    api: Arc<HttpApi>,
    /// The built UI, if it is built (it has an `index.html`).
    dir: Option<PathBuf>,
    settings: serde_json::Value,
    /// The key the engine requires, which the UI asks the browser for.
    api_key: Option<String>,
}

impl WebUi {
    pub(crate) fn new(api: Arc<HttpApi>, options: &WebUiOptions, api_key: Option<String>) -> WebUi {
        let dir = options.dir.clone().unwrap_or_else(default_dir);
        let built = dir.join("index.html").is_file();
        if !built {
            tracing::warn!(
                "the Web UI is not built (no {}): run `{BUILD_COMMAND}` in Capstan's repository",
                dir.join("index.html").display()
            );
        }
        WebUi {
            api,
            dir: built.then_some(dir),
            settings: settings(options.codec_endpoint.as_deref()),
            api_key,
        }
    }

    /// Serves one request.
    pub(crate) async fn handle(&self, request: Request<Body>) -> Response<Body> {
        let mut request = request;
        if let Some(key) = &self.api_key {
            match basic_password(request.headers()) {
                Some(given) if same(given.as_bytes(), key.as_bytes()) => {
                    // The UI's calls carry the key as any client's do.
                    if let Ok(value) = HeaderValue::from_str(&format!("Bearer {key}")) {
                        request.headers_mut().insert(header::AUTHORIZATION, value);
                    }
                }
                _ => return unauthorized(),
            }
        }
        let cookie = csrf_cookie(request.headers());
        let path = request.uri().path().to_owned();
        let mut answer = if path == "/api/v1/settings" {
            json(StatusCode::OK, &self.settings)
        } else if path == "/healthz" {
            json(StatusCode::OK, &serde_json::json!({ "status": "OK" }))
        } else if path.starts_with("/api/") {
            match csrf_refusal(request.method(), request.headers(), cookie.as_deref()) {
                Some(refused) => refused,
                None => self.api.handle(request, Dialect::Ui).await,
            }
        } else {
            self.file(&path).await
        };
        if cookie.is_none() {
            let token = uuid::Uuid::new_v4().simple().to_string();
            let value = format!("_csrf={token}; Path=/; Max-Age=86400; SameSite=Strict");
            if let Ok(value) = HeaderValue::from_str(&value) {
                answer.headers_mut().append(header::SET_COOKIE, value);
            }
        }
        answer
    }

    /// A file of the built UI; a path that names none is the app's (it routes in the
    /// browser).
    async fn file(&self, path: &str) -> Response<Body> {
        let Some(dir) = &self.dir else {
            return not_built();
        };
        let relative = path.trim_start_matches('/');
        // Only plain names: no `..`, no absolute paths, no backslashes.
        let safe = relative
            .split('/')
            .all(|part| !part.is_empty() && part != ".." && part != "." && !part.contains('\\'));
        let candidate = dir.join(relative);
        let file = if safe && candidate.is_file() {
            candidate
        } else {
            dir.join("index.html")
        };
        let read = {
            let file = file.clone();
            tokio::task::spawn_blocking(move || std::fs::read(file)).await
        };
        match read.unwrap_or_else(|e| Err(std::io::Error::other(e))) {
            Ok(bytes) => {
                let mut answer = Response::new(Body::from(bytes));
                answer.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(media_type(&file)),
                );
                answer
            }
            Err(e) => {
                tracing::error!("cannot read the Web UI's {}: {e}", file.display());
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("cannot read the Web UI's {}: {e}", file.display()),
                )
            }
        }
    }
}

/// The UI's settings, as Temporal's UI server writes them.
fn settings(codec_endpoint: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "Auth": { "Enabled": false, "Options": null, "RedirectToProvider": false },
        "DefaultNamespace": "default",
        "ShowTemporalSystemNamespace": false,
        "NavCollapsedByDefault": false,
        "FeedbackURL": "",
        "DisableNewsFetch": true,
        "NotifyOnNewVersion": false,
        "Codec": {
            "Endpoint": codec_endpoint.unwrap_or(""),
            "PassAccessToken": false,
            "IncludeCredentials": false,
            "DefaultErrorMessage": "",
            "DefaultErrorLink": "",
        },
        "Version": UI_VERSION,
        "DisableWriteActions": false,
        "WorkflowTerminateDisabled": false,
        "WorkflowCancelDisabled": false,
        "WorkflowSignalDisabled": false,
        "WorkflowUpdateDisabled": false,
        "WorkflowResetDisabled": false,
        "WorkflowPauseDisabled": false,
        "BatchActionsDisabled": false,
        "StartWorkflowDisabled": false,
        "HideWorkflowQueryErrors": false,
        "RefreshWorkflowCountsDisabled": false,
        "ActivityCommandsDisabled": false,
    })
}

/// The `_csrf` cookie's value, if the request has one.
fn csrf_cookie(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == "_csrf")
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty())
}

/// The refusal of a write that does not carry the `_csrf` cookie's value in `X-CSRF-TOKEN`
/// (a page of another site can make the browser send the cookie, not read it): as
/// Temporal's UI server, 400 without the header, 403 when it does not match.
fn csrf_refusal(
    method: &Method,
    headers: &http::HeaderMap,
    cookie: Option<&str>,
) -> Option<Response<Body>> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let Some(token) = headers.get("x-csrf-token") else {
        return Some(json(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({ "message": "missing csrf token in request header" }),
        ));
    };
    match cookie {
        Some(cookie) if same(token.as_bytes(), cookie.as_bytes()) => None,
        _ => Some(json(
            StatusCode::FORBIDDEN,
            &serde_json::json!({ "message": "invalid csrf token" }),
        )),
    }
}

/// Whether two secrets are equal, in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The password of an HTTP Basic `Authorization` header.
fn basic_password(headers: &http::HeaderMap) -> Option<String> {
    use base64::Engine as _;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':')
        .map(|(_, password)| password.to_owned())
}

fn unauthorized() -> Response<Body> {
    let mut answer = text(
        StatusCode::UNAUTHORIZED,
        "this engine requires its API key: give it as the password (any user name)",
    );
    answer.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"capstan-engine\", charset=\"UTF-8\""),
    );
    answer
}

/// Every page while the UI is not built: what to run.
fn not_built() -> Response<Body> {
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!(
            "The Temporal Web UI is not built yet. In Capstan's repository, run\n\n    {BUILD_COMMAND}\n\n\
             (it installs Node.js from PyPI and the UI from the npm registry, then builds it into \
             {}), and reload this page.\n",
            default_dir().display()
        ),
    )
}

fn json(status: StatusCode, json: &serde_json::Value) -> Response<Body> {
    let mut answer = Response::new(Body::from(format!("{json}\n")));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    answer
}

fn text(status: StatusCode, text: &str) -> Response<Body> {
    let mut answer = Response::new(Body::from(text.to_owned()));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    answer
}

/// The media type of a built file, by its extension.
fn media_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "txt" => "text/plain; charset=utf-8",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

/// Serves the UI on `listener` until `stop` resolves.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    ui: Arc<WebUi>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let app = axum::Router::new().fallback(move |request: Request<Body>| {
        let ui = ui.clone();
        async move { ui.handle(request).await }
    });
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!("the Web UI server stopped: {e}");
    }
}
