//! Payload codecs that ship with Capstan, and the codec server operators point the
//! Temporal UI and CLI at to read encoded histories.

mod encryption;
mod server;

pub use encryption::{AesGcmCodec, KeyError};
pub use server::CodecServer;
