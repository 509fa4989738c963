//! An engine started with an API key serves only calls that carry it as
//! `authorization: Bearer <key>`; the health service answers without one.

use capstan::{prelude::*, testing::Python, ClientError};
use capstan_engine::{Engine, EngineOptions};
use tonic::transport::Channel;
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

mod support;

const KEY: &str = "engine-test-key-7f3a";

async fn engine_with_key() -> Engine {
    Engine::start(EngineOptions {
        api_key: Some(KEY.to_owned()),
        ..EngineOptions::default()
    })
    .await
    .unwrap()
}

/// A Capstan client of `engine` with `key`, in plaintext (an API key otherwise turns TLS
/// on).
async fn connect(engine: &Engine, key: Option<&str>) -> Result<Client, ClientError> {
    let mut options = Client::builder(format!("http://{}", engine.address()));
    if let Some(key) = key {
        options = options.api_key(key);
    }
    options.connect().await
}

#[tokio::test]
async fn only_calls_with_the_api_key_are_served() {
    let engine = engine_with_key().await;
    let client = connect(&engine, Some(KEY))
        .await
        .expect("the key is accepted");
    assert!(client.list_workflows("").await.unwrap().is_empty());

    for key in [None, Some("engine-test-key-7f3b"), Some("")] {
        let refused = connect(&engine, key).await.unwrap_err().to_string();
        eprintln!("{key:?}: {refused}");
        let expected = match key {
            Some(k) if !k.is_empty() => "is not the one this engine was started with",
            _ => "this engine requires an API key",
        };
        assert!(refused.contains(expected), "{key:?}: {refused}");
        assert!(
            !refused.contains("7f3b"),
            "the sent key is echoed: {refused}"
        );
    }

    // Load balancers probe without credentials.
    let channel = Channel::from_shared(format!("http://{}", engine.address()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    // The OperatorService takes the same key.
    use temporalio_protos::temporal::api::operatorservice::v1::{
        operator_service_client::OperatorServiceClient, ListSearchAttributesRequest,
    };
    let list = || ListSearchAttributesRequest {
        namespace: "default".to_owned(),
    };
    let mut operator = OperatorServiceClient::new(channel.clone());
    let refused = operator.list_search_attributes(list()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    let mut keyed = tonic::Request::new(list());
    keyed
        .metadata_mut()
        .insert("authorization", format!("Bearer {KEY}").parse().unwrap());
    operator
        .list_search_attributes(keyed)
        .await
        .expect("served with the key");

    let health = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "temporal.api.workflowservice.v1.WorkflowService".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);
    engine.shutdown().await;
}

/// The Python SDK's `api_key` (with `tls=False`: it turns TLS on with a key otherwise).
const PYTHON_CLIENT: &str = r#"
import asyncio, sys
from temporalio.client import Client
from temporalio.service import RPCError

async def main(address, key):
    good = await Client.connect(address, api_key=key, tls=False)
    count = await good.count_workflows()
    print("served", count.count)
    for wrong in [key + "x", None]:
        try:
            client = await Client.connect(address, api_key=wrong, tls=False)
            await client.count_workflows()
            print("served without the key")
        except RPCError as e:
            print("refused", e.status.name, "echoed" if (wrong and wrong in e.message) else "")
        except RuntimeError as e:
            print("refused at connect", "UNAUTHENTICATED" if "Unauthenticated" in str(e) or "API key" in str(e) else str(e))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"#;

#[tokio::test]
async fn the_python_sdk_sends_the_api_key() {
    let engine = engine_with_key().await;
    let python = Python::ensure().await.expect("the Python SDK installs");
    let out = python
        .run_script(
            capstan::testing::Script::source(PYTHON_CLIENT),
            [engine.address(), KEY.to_owned()],
        )
        .await
        .unwrap();
    eprintln!("{}", out.stdout);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"served 0"), "{}", out.stdout);
    assert_eq!(lines.len(), 3, "{}\n{}", out.stdout, out.stderr);
    for line in &lines[1..] {
        assert!(
            line.starts_with("refused")
                && line.contains("UNAUTHENTICATED")
                && !line.contains("echoed"),
            "{}\n{}",
            out.stdout,
            out.stderr
        );
    }
    engine.shutdown().await;
}
