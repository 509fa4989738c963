//! The engine on the wire: what a client that sends broken bytes is told.

mod support;

use bytes::{Buf as _, BufMut as _};
use tonic::{
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::http::uri::PathAndQuery,
    Status,
};

/// Sends and receives message bytes as they are.
#[derive(Debug, Default, Clone)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let len = src.remaining();
        Ok(Some(src.copy_to_bytes(len).to_vec()))
    }
}

/// A gRPC client of `engine` that sends bytes as they are.
async fn raw_client(
    engine: &capstan_engine::Engine,
) -> tonic::client::Grpc<tonic::transport::Channel> {
    let channel =
        tonic::transport::Channel::from_shared(format!("http://{}", engine.socket_addr()))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    grpc
}

/// Checks that the engine goes on serving on the same connection.
async fn still_serves(grpc: &mut tonic::client::Grpc<tonic::transport::Channel>) {
    let path =
        PathAndQuery::from_static("/temporal.api.workflowservice.v1.WorkflowService/GetSystemInfo");
    grpc.ready().await.unwrap();
    grpc.unary(tonic::Request::new(Vec::new()), path, Raw)
        .await
        .expect("GetSystemInfo answers");
}

#[tokio::test]
async fn a_request_that_is_not_protobuf_is_invalid_not_internal() {
    let (engine, _client) = support::engine().await;
    let mut grpc = raw_client(&engine).await;
    let path = PathAndQuery::from_static(
        "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution",
    );
    // A field header announcing a length-delimited field far longer than the message.
    let status = grpc
        .unary(tonic::Request::new(vec![0x0a, 0xff, 0xff, 0x7f]), path, Raw)
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .contains("not a valid StartWorkflowExecutionRequest message"),
        "{status:?}"
    );
    still_serves(&mut grpc).await;
    engine.shutdown().await;
}

#[tokio::test]
async fn a_request_over_the_message_limit_is_refused_naming_the_limit() {
    let (engine, _client) = support::engine().await;
    let mut grpc = raw_client(&engine).await;
    let path = PathAndQuery::from_static(
        "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution",
    );
    // A 5 MiB namespace (field 1): a valid message, past the default 4 MiB.
    let len = 5 << 20;
    let mut message = vec![0x0a];
    let mut rest = len;
    while rest >= 0x80 {
        message.push((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    message.push(rest as u8);
    message.resize(message.len() + len, b'n');
    let status = grpc
        .unary(tonic::Request::new(message), path, Raw)
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
    assert!(
        status.message().contains("the limit is: 4194304 bytes"),
        "{status:?}"
    );
    still_serves(&mut grpc).await;
    engine.shutdown().await;
}
