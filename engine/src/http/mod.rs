//! Temporal's HTTP API: the `google.api.http` bindings of the `WorkflowService` and
//! `OperatorService` methods (`GET /api/v1/namespaces/{namespace}/workflows`, …), in
//! protojson with Temporal's payload shorthand, as `temporal server start-dev --http-port`
//! serves it. Each call becomes the gRPC call of its method, made in-process to the same
//! services a gRPC client reaches (`grpc`), so both answer alike.
//!
//! | module | what |
//! |---|---|
//! | `routes` | the bindings, read from the services' descriptors, and matching a request to one |
//! | `json` | a request message from a body, a path and a query; an answer as JSON |
//! | `payloads` | the payload shorthand |
//! | `grpc` | the in-process gRPC call |

mod grpc;
mod json;
mod payloads;
mod routes;

use std::sync::{Arc, LazyLock};

use axum::body::Body;
use http::{HeaderValue, Method, Response, StatusCode};
use prost::Message as _;
use prost_reflect::DescriptorPool;
use tonic::Code;

pub(crate) use grpc::Grpc;
use routes::{Routes, Unmatched};

/// The services' descriptors: their files and every file they import (`build.rs`).
static DESCRIPTORS: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(
        include_bytes!(concat!(env!("OUT_DIR"), "/http_descriptors.bin")).as_slice(),
    )
    .expect("the built-in descriptors decode")
});

/// The services the HTTP API serves.
const SERVICES: [&str; 2] = [
    "temporal.api.workflowservice.v1.WorkflowService",
    "temporal.api.operatorservice.v1.OperatorService",
];

/// The media type with which a client asks for payloads in protojson's own form, not in
/// shorthand: as `Accept` for answers, as `Content-Type` for requests and answers (the
/// `noPayloadShorthand` query parameter does it for answers too).
const NO_SHORTHAND: &[u8] = b"application/json+no-payload-shorthand";

/// The HTTP API over the engine's gRPC services.
pub(crate) struct HttpApi {
    routes: Routes,
    grpc: Grpc,
    /// The largest request body taken, as for a gRPC message.
    body_limit: usize,
}

impl HttpApi {
    pub(crate) fn new(grpc: Grpc, body_limit: usize) -> HttpApi {
        HttpApi {
            routes: Routes::new(&DESCRIPTORS, &SERVICES),
            grpc,
            body_limit,
        }
    }

    /// Serves one HTTP call in `dialect`.
    pub(crate) async fn handle(
        &self,
        request: http::Request<Body>,
        dialect: Dialect,
    ) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let query = parts.uri.query().map(query_pairs).unwrap_or_default();
        let style = Style::of(dialect, &parts.headers, &query);
        let matched = match self.routes.find(&parts.method, parts.uri.path()) {
            Ok(matched) => matched,
            Err(unmatched) => return style.write_unmatched(&unmatched),
        };
        let body = match axum::body::to_bytes(body, self.body_limit).await {
            Ok(body) => body,
            Err(_) => {
                return style.write_invalid(&format!(
                    "the request body is larger than the limit of {} bytes",
                    self.body_limit
                ));
            }
        };
        let route = matched.route;
        let method = &route.method;
        let message = match json::request(route, &matched.bound, &query, &body, style.shorthand_in)
        {
            Ok(message) => message,
            Err(why) => return style.write_invalid(&why),
        };
        let answer = match self
            .grpc
            .call(
                method.parent_service().full_name(),
                method.name(),
                &parts.headers,
                message.encode_to_vec(),
            )
            .await
        {
            Ok(bytes) => json::to_json(&method.output(), &bytes, style.shorthand_out)
                .map_err(tonic::Status::internal),
            Err(status) => Err(status),
        };
        match answer {
            Ok(json) => style.write(StatusCode::OK, &json),
            Err(status) => style.write_status(&status),
        }
    }
}

/// The query's `name=value` pairs, percent-decoded (`+` is a space).
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(name), form_decode(value))
        })
        .collect()
}

/// `application/x-www-form-urlencoded` text; a query with a bad escape is taken as
/// written.
fn form_decode(text: &str) -> String {
    routes::unescape(text, true).map_or_else(
        || text.to_owned(),
        |bytes| String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// Which HTTP API a call came to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Dialect {
    /// Temporal's HTTP API (`--http-port`): payloads in shorthand unless the call asks
    /// otherwise; indented JSON if it asks (`?pretty`).
    Api,
    /// The API as the Web UI's server forwards it (`--ui-port`): payloads in full both
    /// ways, indented JSON.
    Ui,
}

/// How one call's JSON is read and written.
struct Style {
    shorthand_in: bool,
    shorthand_out: bool,
    pretty: bool,
}

impl Style {
    fn of(dialect: Dialect, headers: &http::HeaderMap, query: &[(String, String)]) -> Style {
        if dialect == Dialect::Ui {
            return Style {
                shorthand_in: false,
                shorthand_out: false,
                pretty: true,
            };
        }
        let is_no_shorthand = |name| {
            headers
                .get(name)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(NO_SHORTHAND))
        };
        let asked = |name: &str| query.iter().any(|(n, _)| n == name);
        let shorthand_in = !is_no_shorthand(http::header::CONTENT_TYPE);
        Style {
            shorthand_in,
            shorthand_out: shorthand_in
                && !is_no_shorthand(http::header::ACCEPT)
                && !asked("noPayloadShorthand"),
            pretty: asked("pretty"),
        }
    }

    /// A JSON answer.
    fn write(&self, status: StatusCode, json: &serde_json::Value) -> Response<Body> {
        let (text, media) = if self.pretty {
            let text = serde_json::to_string_pretty(json).unwrap_or_default();
            (text, "application/json+pretty")
        } else {
            (json.to_string(), "application/json")
        };
        let mut answer = Response::new(Body::from(text));
        *answer.status_mut() = status;
        answer
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, HeaderValue::from_static(media));
        answer
    }

    /// An error answer: `{code, message, details}` (no `details` when there are none), as
    /// Temporal's HTTP API gives it.
    fn write_error(
        &self,
        status: StatusCode,
        code: Code,
        message: &str,
        details: Option<serde_json::Value>,
    ) -> Response<Body> {
        let mut json = serde_json::json!({ "code": code as i32, "message": message });
        if let Some(details) = details.filter(|d| d.as_array().is_some_and(|d| !d.is_empty())) {
            json["details"] = details;
        }
        self.write(status, &json)
    }

    /// `INVALID_ARGUMENT` with `message`.
    fn write_invalid(&self, message: &str) -> Response<Body> {
        self.write_error(
            StatusCode::BAD_REQUEST,
            Code::InvalidArgument,
            message,
            None,
        )
    }

    /// A gRPC status as an HTTP error: its code's HTTP status, its message, and its typed
    /// details.
    fn write_status(&self, status: &tonic::Status) -> Response<Body> {
        let details = DESCRIPTORS
            .get_message_by_name("google.rpc.Status")
            .and_then(|desc| json::to_json(&desc, status.details(), self.shorthand_out).ok())
            .and_then(|json| json.get("details").cloned());
        self.write_error(
            http_status(status.code()),
            status.code(),
            status.message(),
            details,
        )
    }

    /// No route: 404 for an unknown path, 501 for a known path's other methods (as
    /// grpc-gateway answers both).
    fn write_unmatched(&self, unmatched: &Unmatched) -> Response<Body> {
        match unmatched {
            Unmatched::Path => {
                self.write_error(StatusCode::NOT_FOUND, Code::NotFound, "Not Found", None)
            }
            Unmatched::Method(allowed) => {
                let mut answer = self.write_error(
                    StatusCode::NOT_IMPLEMENTED,
                    Code::Unimplemented,
                    "Method Not Allowed",
                    None,
                );
                let allow = allowed
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                if let Ok(allow) = HeaderValue::from_str(&allow) {
                    answer.headers_mut().insert(http::header::ALLOW, allow);
                }
                answer
            }
            Unmatched::Encoding(segment) => self.write_invalid(&format!(
                "the path segment `{segment}` is not percent-encoded UTF-8"
            )),
        }
    }
}

/// The HTTP status of a gRPC code, as grpc-gateway (and so Temporal) maps it.
fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Serves `api` on `listener` until `stop` resolves.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    api: Arc<HttpApi>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let app = axum::Router::new().fallback(move |request: http::Request<Body>| {
        let api = api.clone();
        async move { api.handle(request, Dialect::Api).await }
    });
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!("the HTTP API stopped: {e}");
    }
}

#[cfg(test)]
mod tests;
