//! Calls the engine's own gRPC services in-process: an HTTP call becomes the gRPC call of
//! its RPC, served by the same code (API key, size limits, the database's state) as a gRPC
//! client's.

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use http_body_util::{BodyExt as _, Full};
use tonic::Status;
use tower_service::Service as _;

/// The engine's gRPC services, to call in-process.
#[derive(Clone)]
pub(crate) struct Grpc {
    routes: tonic::service::Routes,
}

impl Grpc {
    pub(crate) fn new(routes: tonic::service::Routes) -> Grpc {
        Grpc { routes }
    }

    /// Calls `/{service}/{method}` with the encoded `request` and `headers` (those of the
    /// HTTP call that the services read: the API key, a deadline); answers the encoded
    /// response or the call's status.
    pub(crate) async fn call(
        &self,
        service: &str,
        method: &str,
        headers: &http::HeaderMap,
        request: Vec<u8>,
    ) -> Result<Bytes, Status> {
        let mut framed = BytesMut::with_capacity(request.len() + 5);
        framed.put_u8(0);
        framed.put_u32(u32::try_from(request.len()).map_err(|_| {
            Status::resource_exhausted("the request is larger than gRPC can carry")
        })?);
        framed.extend_from_slice(&request);
        let mut call = http::Request::builder()
            .method(http::Method::POST)
            .uri(format!("/{service}/{method}"))
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header("te", "trailers");
        for name in ["authorization", "grpc-timeout"] {
            for value in headers.get_all(name) {
                call = call.header(name, value);
            }
        }
        let call = call
            .body(Full::new(framed.freeze()))
            .map_err(|e| Status::internal(format!("cannot form the call of {method}: {e}")))?;
        let mut routes = self.routes.clone();
        std::future::poll_fn(|cx| {
            tower_service::Service::<http::Request<Full<Bytes>>>::poll_ready(&mut routes, cx)
        })
        .await
        .map_err(|e| Status::internal(format!("the engine cannot take {method}: {e}")))?;
        let response = routes
            .call(call)
            .await
            .map_err(|e| Status::internal(format!("the engine failed {method}: {e}")))?;
        if let Some(status) = Status::from_header_map(response.headers()) {
            if status.code() != tonic::Code::Ok {
                return Err(status);
            }
        }
        let collected = response
            .into_body()
            .collect()
            .await
            .map_err(|e| Status::internal(format!("the answer of {method} broke off: {e}")))?;
        if let Some(status) = collected.trailers().and_then(Status::from_header_map) {
            if status.code() != tonic::Code::Ok {
                return Err(status);
            }
        }
        let mut body = collected.to_bytes();
        if body.len() < 5 {
            return Err(Status::internal(format!("{method} answered no message")));
        }
        let compressed = body.get_u8();
        let len = body.get_u32() as usize;
        if compressed != 0 || body.len() != len {
            return Err(Status::internal(format!(
                "{method} answered a message that is not one uncompressed frame"
            )));
        }
        Ok(body)
    }
}
