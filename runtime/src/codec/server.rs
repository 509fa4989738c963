//! The codec server: the HTTP endpoints `POST /encode` and `POST /decode` that the Temporal
//! UI and CLI call to show payloads a codec encoded (for example, encrypted ones).
//!
//! Bodies are the JSON form of `temporal.api.common.v1.Payloads`:
//! `{"payloads": [{"metadata": {"encoding": "<base64>"}, "data": "<base64>"}]}`.

use std::{collections::HashMap, net::SocketAddr, sync::Arc};

use axum::{
    extract::State,
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use base64::{engine::general_purpose::STANDARD, Engine};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::converter::{Payload, PayloadCodec};

/// A running codec server; stops when dropped.
#[derive(Debug)]
pub struct CodecServer {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

#[derive(Serialize, Deserialize, Default)]
struct JsonPayloads {
    #[serde(default)]
    payloads: Vec<JsonPayload>,
}

#[derive(Serialize, Deserialize)]
struct JsonPayload {
    #[serde(default)]
    metadata: HashMap<String, String>,
    #[serde(default)]
    data: String,
}

impl JsonPayload {
    fn into_payload(self) -> Result<Payload, String> {
        let decode = |what: &str, text: &str| {
            STANDARD
                .decode(text)
                .map_err(|e| format!("{what} is not base64: {e}"))
        };
        Ok(Payload {
            metadata: self
                .metadata
                .iter()
                .map(|(k, v)| Ok((k.clone(), decode(&format!("metadata `{k}`"), v)?)))
                .collect::<Result<_, String>>()?,
            data: decode("data", &self.data)?,
            ..Default::default()
        })
    }

    fn from_payload(payload: Payload) -> Self {
        Self {
            metadata: payload
                .metadata
                .into_iter()
                .map(|(k, v)| (k, STANDARD.encode(v)))
                .collect(),
            data: STANDARD.encode(payload.data),
        }
    }
}

#[derive(Clone, Copy)]
enum Way {
    Encode,
    Decode,
}

impl CodecServer {
    /// Serves `codec` on `address` (port 0 picks a free one).
    pub async fn start(codec: impl PayloadCodec, address: SocketAddr) -> std::io::Result<Self> {
        let codec: Arc<dyn PayloadCodec> = Arc::new(codec);
        let app = Router::new()
            .route(
                "/encode",
                post(|State(c), headers, body| handle(c, Way::Encode, headers, body))
                    .options(preflight),
            )
            .route(
                "/decode",
                post(|State(c), headers, body| handle(c, Way::Decode, headers, body))
                    .options(preflight),
            )
            .with_state(codec);
        let listener = tokio::net::TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!("codec server stopped: {e}");
            }
        });
        Ok(Self {
            address,
            stop: Some(stop),
        })
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for CodecServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The browser UI calls the codec server cross-origin: allow it.
fn cors(headers: &HeaderMap, response: &mut Response) {
    let origin = headers
        .get(header::ORIGIN)
        .cloned()
        .unwrap_or(HeaderValue::from_static("*"));
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type, x-namespace, authorization"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
}

async fn preflight(method: Method, headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if method == Method::OPTIONS {
        cors(&headers, &mut response);
    }
    response
}

async fn handle(
    codec: Arc<dyn PayloadCodec>,
    way: Way,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let result = serde_json::from_slice::<JsonPayloads>(&body)
        .map_err(|e| format!("body is not a Payloads JSON object: {e}"))
        .and_then(|json| {
            json.payloads
                .into_iter()
                .map(JsonPayload::into_payload)
                .collect::<Result<Vec<_>, _>>()
        })
        .and_then(|payloads| {
            match way {
                Way::Encode => codec.encode(payloads),
                Way::Decode => codec.decode(payloads),
            }
            .map_err(|e| e.to_string())
        });
    let mut response = match result {
        Ok(payloads) => Json(JsonPayloads {
            payloads: payloads
                .into_iter()
                .map(JsonPayload::from_payload)
                .collect(),
        })
        .into_response(),
        Err(message) => (StatusCode::BAD_REQUEST, message).into_response(),
    };
    cors(&headers, &mut response);
    response
}
