//! The wire codec of the gRPC service: prost's, except that a request that is not a valid
//! protobuf message is the client's mistake (`INVALID_ARGUMENT`), not the engine's
//! (`INTERNAL`, which is what prost's codec answers).

use prost::Message;
use tonic::{
    codec::{BufferSettings, DecodeBuf, EncodeBuf},
    Status,
};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Encodes `T` (answers) and decodes `U` (requests).
#[derive(Debug)]
pub(crate) struct Codec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Self(ProstCodec::default())
    }
}

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = Encoder<T>;
    type Decoder = Decoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        Encoder(self.0.encoder())
    }

    fn decoder(&mut self) -> Self::Decoder {
        Decoder(self.0.decoder())
    }
}

#[derive(Debug)]
pub(crate) struct Encoder<T>(ProstEncoder<T>);

impl<T: Message> tonic::codec::Encoder for Encoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        self.0.encode(item, dst)
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

#[derive(Debug)]
pub(crate) struct Decoder<U>(ProstDecoder<U>);

impl<U: Message + Default> tonic::codec::Decoder for Decoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(src).map_err(|status| {
            Status::invalid_argument(format!(
                "the request is not a valid {} message: {}",
                short_type_name::<U>(),
                status.message()
            ))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

/// `StartWorkflowExecutionRequest` for `temporalio_protos::…::StartWorkflowExecutionRequest`.
fn short_type_name<U>() -> &'static str {
    let name = std::any::type_name::<U>();
    name.rsplit("::").next().unwrap_or(name)
}
