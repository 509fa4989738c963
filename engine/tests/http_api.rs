//! Temporal's HTTP API on the engine against the Temporal dev server's `--http-port`:
//! each test sends the same HTTP calls to both and compares what a client sees (HTTP
//! status, the error's code and detail types, and the answer's JSON where Temporal's is the
//! contract: payload shorthand, enum names, event types), with ids and times left out.

use std::sync::OnceLock;

use capstan::testing::{unique_task_queue, DevServer};
use capstan_engine::{Engine, EngineOptions};
use http_body_util::{BodyExt as _, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde_json::{json, Value};

/// One server's HTTP API.
struct Http {
    base: String,
    namespace: String,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<bytes::Bytes>>,
    /// Kept running while the test runs.
    _engine: Option<Engine>,
}

/// An answer: its HTTP status and JSON body.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    json: Value,
}

impl Http {
    fn new(address: &str, namespace: &str, engine: Option<Engine>) -> Http {
        Http {
            base: format!("http://{address}"),
            namespace: namespace.to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            _engine: engine,
        }
    }

    /// The engine with its HTTP API on a free port.
    async fn engine() -> Http {
        let engine = Engine::start(EngineOptions {
            http_port: Some(0),
            ..EngineOptions::default()
        })
        .await
        .expect("the engine starts");
        let address = engine.http_address().expect("the HTTP API is served");
        Http::new(&address, "default", Some(engine))
    }

    /// The dev server of this test binary, with its HTTP API.
    fn temporal() -> Http {
        static DEV: OnceLock<(DevServer, u16)> = OnceLock::new();
        let (dev, port) = DEV.get_or_init(|| {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let args = ["--http-port".to_owned(), port.to_string()];
            let dev = DevServer::start_blocking_with_args(&args).expect("the dev server starts");
            (dev, port)
        });
        Http::new(&format!("127.0.0.1:{port}"), dev.namespace(), None)
    }

    /// `method path` with a JSON body (or raw text) and extra headers.
    async fn send(
        &self,
        method: &str,
        path: impl Into<String>,
        body: Body,
        headers: Vec<(&str, &str)>,
    ) -> Answer {
        let path = path.into().replace("{ns}", &self.namespace);
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let bytes = match body {
            Body::None => Vec::new(),
            Body::Json(json) => json.to_string().into_bytes(),
            Body::Raw(text) => text.as_bytes().to_vec(),
        };
        let request = request.body(Full::new(bytes.into())).expect("a request");
        let answer = self
            .client
            .request(request)
            .await
            .expect("the server answers");
        let status = answer.status().as_u16();
        let body = answer
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        let json = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        Answer { status, json }
    }

    async fn get(&self, path: impl Into<String>) -> Answer {
        self.send("GET", path, Body::None, vec![]).await
    }

    async fn post(&self, path: impl Into<String>, body: Value) -> Answer {
        self.send("POST", path, Body::Json(body), vec![]).await
    }
}

enum Body {
    None,
    Json(Value),
    Raw(&'static str),
}

/// The engine and Temporal, each with its own names for the test's workflows.
async fn both() -> [(Http, String, String); 2] {
    let engine = Http::engine().await;
    let temporal = Http::temporal();
    [engine, temporal].map(|http| {
        let id = unique_task_queue("http-workflow");
        let queue = unique_task_queue("http-queue");
        (http, id, queue)
    })
}

/// What an error answer shows a client: the HTTP status, the gRPC code, the detail types.
fn error_shape(answer: &Answer) -> Value {
    let types: Vec<Value> = answer.json["details"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| d["@type"].clone())
        .collect();
    json!({ "status": answer.status, "code": answer.json["code"], "details": types })
}

/// `pointer`'s value in each answer, which must be the same.
#[track_caller]
fn same_at(answers: &[Answer; 2], pointer: &str) {
    let [engine, temporal] = answers.each_ref().map(|a| a.json.pointer(pointer).cloned());
    assert_eq!(
        engine, temporal,
        "{pointer}: engine (left) and Temporal (right) differ\nengine: {}\ntemporal: {}",
        answers[0].json, answers[1].json
    );
}

/// Each answer's status, which must be the same.
#[track_caller]
fn same_status(answers: &[Answer; 2]) {
    assert_eq!(
        answers[0].status, answers[1].status,
        "HTTP status differs\nengine: {}\ntemporal: {}",
        answers[0].json, answers[1].json
    );
}

/// The event types of a history answer.
fn event_types(answer: &Answer) -> Vec<String> {
    answer.json["history"]["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["eventType"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Runs `call` against both servers.
async fn on_both<'a, F, Fut>(servers: &'a [(Http, String, String); 2], call: F) -> [Answer; 2]
where
    F: Fn(&'a Http, &'a str, &'a str) -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    let engine = call(&servers[0].0, &servers[0].1, &servers[0].2).await;
    let temporal = call(&servers[1].0, &servers[1].1, &servers[1].2).await;
    [engine, temporal]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_started_signalled_and_terminated_over_http_reads_alike() {
    let servers = both().await;
    let started = on_both(&servers, |http, id, queue| {
        let body = json!({
            "workflowType": { "name": "HttpProbe" },
            "taskQueue": { "name": queue },
            "input": ["hello", { "n": 1, "list": [true, null] }, null],
            "memo": { "fields": { "owner": "ops" } },
            "requestId": format!("{id}-1"),
        });
        http.post(format!("/api/v1/namespaces/{{ns}}/workflows/{id}"), body)
    })
    .await;
    same_status(&started);
    assert_eq!(started[0].status, 200, "{}", started[0].json);
    same_at(&started, "/started");

    // The same id again, with another request id: already started.
    let again = on_both(&servers, |http, id, queue| {
        let body = json!({
            "workflowType": { "name": "HttpProbe" },
            "taskQueue": { "name": queue },
            "requestId": format!("{id}-2"),
        });
        http.post(format!("/api/v1/namespaces/{{ns}}/workflows/{id}"), body)
    })
    .await;
    assert_eq!(error_shape(&again[0]), error_shape(&again[1]));

    let described = on_both(&servers, |http, id, _| {
        http.get(format!("/api/v1/namespaces/{{ns}}/workflows/{id}"))
    })
    .await;
    same_status(&described);
    for pointer in [
        "/workflowExecutionInfo/status",
        "/workflowExecutionInfo/type",
        "/workflowExecutionInfo/historyLength",
        "/workflowExecutionInfo/memo",
        "/executionConfig/workflowTaskTimeout",
    ] {
        same_at(&described, pointer);
    }

    let signalled = on_both(&servers, |http, id, _| {
        let body = json!({ "input": [42, "x"], "identity": "http-probe" });
        http.post(
            format!("/api/v1/namespaces/{{ns}}/workflows/{id}/signal/go"),
            body,
        )
    })
    .await;
    same_status(&signalled);
    same_at(&signalled, "/link/workflowEvent/requestIdRef");
    same_at(&signalled, "/link/workflowEvent/namespace");

    let history = on_both(&servers, |http, id, _| {
        http.get(format!("/api/v1/namespaces/{{ns}}/workflows/{id}/history"))
    })
    .await;
    same_status(&history);
    assert_eq!(event_types(&history[0]), event_types(&history[1]));
    for pointer in [
        "/history/events/0/workflowExecutionStartedEventAttributes/input",
        "/history/events/0/workflowExecutionStartedEventAttributes/memo",
        "/history/events/0/workflowExecutionStartedEventAttributes/workflowType",
        "/history/events/0/workflowExecutionStartedEventAttributes/attempt",
        "/history/events/1/workflowTaskScheduledEventAttributes/startToCloseTimeout",
        "/history/events/2/workflowExecutionSignaledEventAttributes",
    ] {
        same_at(&history, pointer);
    }

    let terminated = on_both(&servers, |http, id, _| {
        let body = json!({ "reason": "enough", "details": ["bye"], "identity": "http-probe" });
        http.post(
            format!("/api/v1/namespaces/{{ns}}/workflows/{id}/terminate"),
            body,
        )
    })
    .await;
    same_status(&terminated);
    same_at(&terminated, "");

    let reverse = on_both(&servers, |http, id, _| {
        http.get(format!(
            "/api/v1/namespaces/{{ns}}/workflows/{id}/history-reverse?maximumPageSize=1"
        ))
    })
    .await;
    same_status(&reverse);
    same_at(&reverse, "/history/events/0/eventType");
    same_at(
        &reverse,
        "/history/events/0/workflowExecutionTerminatedEventAttributes",
    );
    assert!(reverse.iter().all(|a| a.json["nextPageToken"].is_string()));

    // Listed and counted by a query in the query string.
    let listed = on_both(&servers, |http, id, _| {
        let query = format!("WorkflowId%3D%22{id}%22");
        http.get(format!("/api/v1/namespaces/{{ns}}/workflows?query={query}"))
    })
    .await;
    same_status(&listed);
    same_at(&listed, "/executions/0/status");
    same_at(&listed, "/executions/0/type");
    let counted = on_both(&servers, |http, _, queue| {
        let query = format!("TaskQueue%3D%22{queue}%22%20GROUP%20BY%20ExecutionStatus");
        http.get(format!(
            "/api/v1/namespaces/{{ns}}/workflow-count?query={query}"
        ))
    })
    .await;
    same_status(&counted);
    same_at(&counted, "");
}

#[tokio::test(flavor = "multi_thread")]
async fn payloads_the_shorthand_cannot_show_keep_their_full_form() {
    let servers = both().await;
    let binary = json!({ "metadata": { "encoding": "YmluYXJ5L3BsYWlu" }, "data": "AAEC" });
    let proto = json!({ "_protoMessageType": "temporal.api.common.v1.WorkflowType", "name": "x" });
    let started = on_both(&servers, |http, id, queue| {
        let body = json!({
            "workflowType": { "name": "HttpProbe" },
            "taskQueue": { "name": queue },
            "input": { "payloads": [binary, proto] },
        });
        http.post(format!("/api/v1/namespaces/{{ns}}/workflows/{id}"), body)
    })
    .await;
    same_status(&started);
    let history = on_both(&servers, |http, id, _| {
        http.get(format!("/api/v1/namespaces/{{ns}}/workflows/{id}/history"))
    })
    .await;
    same_at(
        &history,
        "/history/events/0/workflowExecutionStartedEventAttributes/input",
    );
    // Asked without shorthand: every payload in full, the same as Temporal's.
    for (query, accept) in [
        ("?noPayloadShorthand", "application/json"),
        ("", "application/json+no-payload-shorthand"),
    ] {
        let full = on_both(&servers, |http, id, _| {
            http.send(
                "GET",
                format!("/api/v1/namespaces/{{ns}}/workflows/{id}/history{query}"),
                Body::None,
                vec![("accept", accept)],
            )
        })
        .await;
        same_at(
            &full,
            "/history/events/0/workflowExecutionStartedEventAttributes/input",
        );
        let input = &full[0].json["history"]["events"][0]
            ["workflowExecutionStartedEventAttributes"]["input"];
        assert_eq!(
            input["payloads"][1]["metadata"]["encoding"],
            "anNvbi9wcm90b2J1Zg=="
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_calls_are_refused_alike() {
    let servers = both().await;
    // Unknown workflow, unknown namespace.
    let missing = on_both(&servers, |http, id, _| {
        http.get(format!("/api/v1/namespaces/{{ns}}/workflows/{id}"))
    })
    .await;
    assert_eq!(error_shape(&missing[0]), error_shape(&missing[1]));
    let no_namespace = on_both(&servers, |http, id, _| {
        http.get(format!(
            "/api/v1/namespaces/no-such-namespace/workflows/{id}"
        ))
    })
    .await;
    assert_eq!(error_shape(&no_namespace[0]), error_shape(&no_namespace[1]));
    same_at(&no_namespace, "/message");
    // Not JSON, JSON of the wrong shape.
    for body in ["{not json", "[1, 2]", "{\"taskQueue\": 7}"] {
        let refused = on_both(&servers, |http, id, _| {
            http.send(
                "POST",
                format!("/api/v1/namespaces/{{ns}}/workflows/{id}"),
                Body::Raw(body),
                vec![],
            )
        })
        .await;
        assert_eq!(
            error_shape(&refused[0]),
            error_shape(&refused[1]),
            "body {body}"
        );
    }
    // An unknown field in the body is refused; an unknown query parameter is ignored.
    let unknown_field = on_both(&servers, |http, id, queue| {
        let body = json!({ "workflowType": { "name": "T" }, "taskQueue": { "name": queue }, "colour": "red" });
        http.post(format!("/api/v1/namespaces/{{ns}}/workflows/{id}"), body)
    })
    .await;
    assert_eq!(
        error_shape(&unknown_field[0]),
        error_shape(&unknown_field[1])
    );
    let unknown_parameter = on_both(&servers, |http, _, _| {
        http.get("/api/v1/namespaces/{ns}/workflows?colour=red")
    })
    .await;
    same_status(&unknown_parameter);
    // A query parameter of the wrong type.
    for query in ["pageSize=lots", "pageSize=1.5"] {
        let bad_query = on_both(&servers, |http, _, _| {
            http.get(format!("/api/v1/namespaces/{{ns}}/workflows?{query}"))
        })
        .await;
        assert_eq!(
            error_shape(&bad_query[0]),
            error_shape(&bad_query[1]),
            "{query}"
        );
    }
    // No such route; a route's path with the wrong method.
    for (method, path) in [
        ("GET", "/api/v1/nothing-here"),
        ("GET", "/api/v2/namespaces/{ns}/workflows"),
        ("DELETE", "/api/v1/namespaces/{ns}/workflows"),
        ("PUT", "/api/v1/namespaces/{ns}/workflows/some-id/terminate"),
    ] {
        let refused = on_both(&servers, |http, _, _| {
            http.send(method, path, Body::None, vec![])
        })
        .await;
        assert_eq!(
            error_shape(&refused[0]),
            error_shape(&refused[1]),
            "{method} {path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn what_the_web_ui_reads_first_reads_alike() {
    let servers = both().await;
    for path in [
        "/api/v1/namespaces/{ns}",
        "/api/v1/namespaces/{ns}/search-attributes",
    ] {
        let answers = on_both(&servers, |http, _, _| http.get(path)).await;
        same_status(&answers);
        assert_eq!(answers[0].status, 200, "{path}: {}", answers[0].json);
    }
    let namespace = on_both(&servers, |http, _, _| http.get("/api/v1/namespaces/{ns}")).await;
    same_at(&namespace, "/namespaceInfo/name");
    same_at(&namespace, "/namespaceInfo/state");
    let attributes = on_both(&servers, |http, _, _| {
        http.get("/api/v1/namespaces/{ns}/search-attributes")
    })
    .await;
    same_at(&attributes, "/systemAttributes/WorkflowId");
    same_at(&attributes, "/systemAttributes/ExecutionStatus");
    let cluster = on_both(&servers, |http, _, _| http.get("/api/v1/cluster-info")).await;
    same_status(&cluster);
    let system = on_both(&servers, |http, _, _| http.get("/api/v1/system-info")).await;
    same_status(&system);
    let queue = on_both(&servers, |http, _, queue| {
        http.get(format!(
            "/api/v1/namespaces/{{ns}}/task-queues/{queue}?taskQueueType=TASK_QUEUE_TYPE_WORKFLOW"
        ))
    })
    .await;
    same_status(&queue);
    same_at(&queue, "/pollers");
}
