//! The AES-GCM codec end to end on a real Temporal dev server: the server stores no
//! plaintext, results round-trip, and the codec server decodes what the server stored.
#![cfg(all(feature = "testing", feature = "encryption"))]

use std::time::Duration;

use capstan::{
    client::history::Attributes,
    codec::{AesGcmCodec, CodecServer},
    converter::ENCODING_KEY,
    prelude::*,
    testing::DevServer,
};

#[activity]
pub async fn reveal(secret: String) -> Result<String, ActivityError> {
    Ok(format!("revealed: {secret}"))
}

#[workflow]
#[derive(Default)]
pub struct SecretWorkflow;

#[workflow]
impl SecretWorkflow {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>, secret: String) -> WorkflowResult<String> {
        Ok(ctx
            .activity(reveal, secret)
            .start_to_close_timeout(Duration::from_secs(10))
            .await?)
    }
}

/// A fresh key in a file, as operators keep them (never in source).
fn key_file(dir: &std::path::Path) -> std::path::PathBuf {
    use base64::Engine;
    let key: [u8; 32] = std::array::from_fn(|i| {
        (i as u8)
            .wrapping_mul(37)
            .wrapping_add(std::process::id() as u8)
    });
    let path = dir.join("keys");
    std::fs::write(
        &path,
        format!(
            "test-key={}\n",
            base64::engine::general_purpose::STANDARD.encode(key)
        ),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn the_server_stores_only_ciphertext() {
    let dir = std::env::temp_dir().join(format!("capstan-encryption-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let codec = AesGcmCodec::from_file(key_file(&dir)).unwrap();
    let server = DevServer::shared().await;
    let client = Client::builder(server.address())
        .codec(codec.clone())
        .connect()
        .await
        .unwrap();
    let tq = format!("encryption-{}", std::process::id());
    let id = format!("secret-{tq}");
    let result = Worker::new(&client, &tq)
        .register_workflow::<SecretWorkflow>()
        .register_activity(reveal)
        .run_until(
            SecretWorkflow::execute(&client, &id, "the password is swordfish".to_owned())
                .task_queue(&tq),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result, "revealed: the password is swordfish");

    // A client without the codec sees what the server stored.
    let plain_client = Client::connect(server.address()).await.unwrap();
    let history = plain_client.workflow_handle(&id).history().await.unwrap();
    let raw = format!("{history:?}");
    assert!(!raw.contains("swordfish"), "plaintext in the history");
    let started_input = history
        .iter()
        .find_map(|e| match &e.attributes {
            Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => a.input.clone(),
            _ => None,
        })
        .unwrap()
        .payloads
        .remove(0);
    assert_eq!(started_input.metadata[ENCODING_KEY], b"binary/encrypted");
    let stored_bytes: Vec<u8> = history
        .iter()
        .flat_map(prost::Message::encode_to_vec)
        .collect();
    assert!(
        !stored_bytes.windows(9).any(|w| w == b"swordfish"),
        "plaintext bytes in the stored history"
    );

    // The codec server decodes it for the UI and the CLI.
    let codec_server = CodecServer::start(codec, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let body = serde_json::json!({ "payloads": [{
        "metadata": started_input.metadata.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(base64_encode(v)))).collect::<serde_json::Map<_, _>>(),
        "data": base64_encode(&started_input.data),
    }]});
    let decoded = post_json(codec_server.address(), "/decode", &body.to_string()).await;
    let decoded: serde_json::Value = serde_json::from_str(&decoded).unwrap();
    let data = base64_decode(decoded["payloads"][0]["data"].as_str().unwrap());
    assert_eq!(
        String::from_utf8(data).unwrap(),
        "\"the password is swordfish\""
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

/// A minimal HTTP/1.1 POST, so the test needs no HTTP client crate.
async fn post_json(address: std::net::SocketAddr, path: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}
