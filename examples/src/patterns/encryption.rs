//! Encryption: every payload the server stores is AES-GCM ciphertext; only clients and
//! workers holding the key read it. The key comes from the environment or a file, never
//! from source.

use capstan::{
    client::history::HistoryEvent,
    codec::{AesGcmCodec, KeyError},
    Client, ClientError,
};
use serde_json::{json, Value};

use crate::tour::workflow_id;

/// The variable holding the keys: `id=base64key[,id=base64key…]`, the first current.
pub const KEYS_VARIABLE: &str = "CAPSTAN_ENCRYPTION_KEYS";

/// The codec from [`KEYS_VARIABLE`], or from a key file when one is given.
pub fn codec(key_file: Option<&std::path::Path>) -> Result<AesGcmCodec, KeyError> {
    match key_file {
        Some(path) => AesGcmCodec::from_file(path),
        None => AesGcmCodec::from_env(KEYS_VARIABLE),
    }
}

/// A client that encrypts what it sends and decrypts what it reads; give workers the same
/// client (they take its codecs).
pub async fn encrypted_client(address: &str, codec: AesGcmCodec) -> Result<Client, ClientError> {
    Client::builder(address).codec(codec).connect().await
}

/// The secret the encrypted workflow takes: it must never reach the server in the clear.
pub const PLAINTEXT_CARD: &str = "card 4111-1111";

/// Whether `secret` is in `history` as the server stores it. Looks at the encoded events,
/// where a payload's bytes appear as they are (their `Debug` text shows payloads in
/// base64, and timestamps or ciphertext there could spell anything).
pub fn stored_in_clear(history: &[HistoryEvent], secret: &str) -> bool {
    let secret = secret.as_bytes();
    history.iter().any(|event| {
        prost::Message::encode_to_vec(event)
            .windows(secret.len())
            .any(|w| w == secret)
    })
}

/// Runs the metrics pattern's `MyWorkflow` with an encrypting client and worker, and
/// returns its result and the history as a client *without* the key sees it.
pub async fn run_encrypted(
    address: &str,
    codec: AesGcmCodec,
    task_queue: &str,
    workflow_id: &str,
) -> anyhow::Result<(String, Vec<HistoryEvent>)> {
    use super::custom_metrics::{my_activity, MyWorkflow};
    let client = encrypted_client(address, codec).await?;
    let result = capstan::Worker::new(&client, task_queue)
        .register_workflow::<MyWorkflow>()
        .register_activity(my_activity)
        .run_until(
            MyWorkflow::execute(&client, workflow_id, PLAINTEXT_CARD.to_owned())
                .task_queue(task_queue),
        )
        .await??;
    let keyless = Client::connect(address).await?;
    let history = keyless.workflow_handle(workflow_id).history().await?;
    Ok((result, history))
}

/// The tour's driver: a throwaway key in a file, as an operator would keep one; the
/// workflow runs encrypted, and the history a keyless client reads has no plaintext.
pub async fn tour(client: &Client, task_queue: &str, run_id: &str) -> anyhow::Result<Value> {
    let dir = std::env::temp_dir().join(format!("capstan-tour-{run_id}"));
    std::fs::create_dir_all(&dir)?;
    let key_file = dir.join("keys");
    let key: [u8; 32] = std::array::from_fn(|i| (i as u8) ^ (run_id.len() as u8) ^ 0x5a);
    std::fs::write(&key_file, format!("tour-key={}\n", base64_encode(&key)))?;
    let codec = codec(Some(&key_file))?;
    let (result, history) = run_encrypted(
        client.address(),
        codec,
        &format!("{task_queue}-encrypted"),
        &workflow_id("encrypted", run_id),
    )
    .await?;
    std::fs::remove_dir_all(&dir)?;
    anyhow::ensure!(
        !stored_in_clear(&history, PLAINTEXT_CARD),
        "plaintext in the server's history"
    );
    Ok(json!({ "result": result, "plaintext_in_history": false }))
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use capstan::client::history::{Attributes, Payload, Payloads};
    use temporalio_common::protos::temporal::api::history::v1::WorkflowExecutionStartedEventAttributes;

    use super::*;

    fn started_with(data: &[u8]) -> Vec<HistoryEvent> {
        let input = Payloads {
            payloads: vec![Payload {
                data: data.to_vec(),
                ..Default::default()
            }],
        };
        vec![HistoryEvent {
            event_id: 4111,
            attributes: Some(Attributes::WorkflowExecutionStartedEventAttributes(
                WorkflowExecutionStartedEventAttributes {
                    input: Some(input),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }]
    }

    #[test]
    fn a_payload_in_the_clear_is_found_and_other_digits_are_not() {
        let json = format!("\"{PLAINTEXT_CARD}\"");
        assert!(stored_in_clear(
            &started_with(json.as_bytes()),
            PLAINTEXT_CARD
        ));
        assert!(!stored_in_clear(
            &started_with(b"\x9a\x41ciphertext"),
            PLAINTEXT_CARD
        ));
    }
}
