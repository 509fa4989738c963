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

/// The header with which a client asks for payloads in protojson's own form, not in
/// shorthand (`x-temporal-payload-shorthand: false`).
const SHORTHAND_HEADER: &str = "x-temporal-payload-shorthand";

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

    /// Serves one HTTP call.
    pub(crate) async fn handle(&self, request: http::Request<Body>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let matched = match self.routes.find(&parts.method, parts.uri.path()) {
            Ok(matched) => matched,
            Err(Unmatched::Path) => {
                return error(StatusCode::NOT_FOUND, Code::NotFound, "Not Found", None);
            }
            Err(Unmatched::Method(allowed)) => {
                let mut answer = error(
                    StatusCode::METHOD_NOT_ALLOWED,
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
                return answer;
            }
            Err(Unmatched::Encoding(segment)) => {
                return invalid(&format!(
                    "the path segment `{segment}` is not percent-encoded UTF-8"
                ));
            }
        };
        let body = match axum::body::to_bytes(body, self.body_limit).await {
            Ok(body) => body,
            Err(_) => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Code::ResourceExhausted,
                    &format!(
                        "the request body is larger than the limit of {} bytes",
                        self.body_limit
                    ),
                    None,
                );
            }
        };
        let route = matched.route;
        let input = route.method.input();
        let mut message = match &route.body {
            routes::Body::Whole => json::message_from_body(&input, &body),
            routes::Body::Field(field) => json::message_from_body_field(&input, field, &body),
            routes::Body::None => Ok(prost_reflect::DynamicMessage::new(input.clone())),
        };
        if let Ok(message) = &mut message {
            let mut fields: Vec<(String, String)> = matched.bound.clone();
            // As grpc-gateway: the query fills in what neither the path nor the body gave,
            // only for bindings without a whole-message body.
            if route.body != routes::Body::Whole {
                if let Some(query) = parts.uri.query() {
                    fields.extend(query_pairs(query));
                }
            }
            for (path, text) in fields {
                if let Err(why) = json::set_from_text(message, &path, &text) {
                    return invalid(&why);
                }
            }
        }
        let message = match message {
            Ok(message) => message,
            Err(why) => return invalid(&why),
        };
        let shorthand = parts
            .headers
            .get(SHORTHAND_HEADER)
            .is_none_or(|v| !v.as_bytes().eq_ignore_ascii_case(b"false"));
        let method = &route.method;
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
            Ok(bytes) => {
                json::to_json(&method.output(), &bytes, shorthand).map_err(tonic::Status::internal)
            }
            Err(status) => Err(status),
        };
        match answer {
            Ok(json) => json_answer(StatusCode::OK, &json),
            Err(status) => status_answer(&status, shorthand),
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

/// `application/x-www-form-urlencoded` text; an undecodable escape stays as it is.
fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(byte) => {
                    out.push(byte);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JSON answer.
fn json_answer(status: StatusCode, json: &serde_json::Value) -> Response<Body> {
    let mut answer = Response::new(Body::from(json.to_string()));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    answer
}

/// An error answer: `{code, message, details}`, as Temporal's HTTP API gives it.
fn error(
    status: StatusCode,
    code: Code,
    message: &str,
    details: Option<serde_json::Value>,
) -> Response<Body> {
    json_answer(
        status,
        &serde_json::json!({
            "code": code as i32,
            "message": message,
            "details": details.unwrap_or_else(|| serde_json::json!([])),
        }),
    )
}

/// `INVALID_ARGUMENT` with `message`.
fn invalid(message: &str) -> Response<Body> {
    error(
        StatusCode::BAD_REQUEST,
        Code::InvalidArgument,
        message,
        None,
    )
}

/// A gRPC status as an HTTP error: its code's HTTP status, its message, and its typed
/// details.
fn status_answer(status: &tonic::Status, shorthand: bool) -> Response<Body> {
    let details = DESCRIPTORS
        .get_message_by_name("google.rpc.Status")
        .and_then(|desc| json::to_json(&desc, status.details(), shorthand).ok())
        .and_then(|json| json.get("details").cloned());
    error(
        http_status(status.code()),
        status.code(),
        status.message(),
        details,
    )
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
        async move { api.handle(request).await }
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
