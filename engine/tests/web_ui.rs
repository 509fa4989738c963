//! The engine's Web UI server, over HTTP: its settings, its files with the app's
//! `index.html` for every other path (never a file outside its folder), the CSRF guard on
//! writes, the API key, and the page that says how to build the UI when it is not built.
//! (The UI itself, in a browser: `examples/tests/web_ui.rs`.)

use capstan_engine::{Engine, EngineOptions, WebUiOptions};
use http_body_util::{BodyExt as _, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

async fn send(url: &str, method: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let client = Client::builder(TokioExecutor::new()).build_http();
    let mut request = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(bytes::Bytes::from(body.to_owned())))
        .unwrap();
    let answer = client
        .request(request)
        .await
        .expect("the UI server answers");
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    let body = answer.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A folder standing for a built UI: an `index.html` and one asset.
fn built_ui(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("capstan-web-ui-{name}-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("_app")).unwrap();
    std::fs::write(dir.join("index.html"), "<!doctype html><title>app</title>").unwrap();
    std::fs::write(dir.join("_app/start.js"), "console.log('start')").unwrap();
    dir
}

async fn engine_with_ui(
    dir: Option<std::path::PathBuf>,
    api_key: Option<&str>,
) -> (Engine, String) {
    let engine = Engine::start(EngineOptions {
        api_key: api_key.map(str::to_owned),
        web_ui: Some(WebUiOptions {
            dir,
            codec_endpoint: Some("http://127.0.0.1:9999".to_owned()),
            ..WebUiOptions::default()
        }),
        ..EngineOptions::default()
    })
    .await
    .expect("the engine starts");
    let url = format!(
        "http://{}",
        engine.web_ui_address().expect("the UI is served")
    );
    (engine, url)
}

#[tokio::test]
async fn the_ui_server_serves_settings_files_and_the_app_for_every_other_path() {
    let dir = built_ui("files");
    let (_engine, url) = engine_with_ui(Some(dir.clone()), None).await;

    let settings = send(&format!("{url}/api/v1/settings"), "GET", &[], "").await;
    assert_eq!(settings.status, 200);
    let json: serde_json::Value = serde_json::from_str(&settings.body).unwrap();
    assert_eq!(json["Codec"]["Endpoint"], "http://127.0.0.1:9999");
    assert_eq!(json["DefaultNamespace"], "default");
    let version = json["Version"].as_str().unwrap();
    let minor: u32 = version.split('.').nth(1).unwrap().parse().unwrap();
    assert!(version.starts_with("2.") && minor >= 23, "{version}");
    // A first visit is given a CSRF cookie.
    let cookie = settings.headers[http::header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.starts_with("_csrf=") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );

    let asset = send(&format!("{url}/_app/start.js"), "GET", &[], "").await;
    assert_eq!(
        (asset.status, asset.body.as_str()),
        (200, "console.log('start')")
    );
    assert!(asset.headers[http::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    // The app routes in the browser: any other path is its page.
    for path in [
        "/",
        "/namespaces/default/workflows",
        "/namespaces/default/workflows/w1/run/history",
        "/_app/missing.js",
        // Never a file outside the UI's folder.
        "/../Cargo.toml",
        "/_app/..%2F..%2Fetc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
    ] {
        let page = send(&format!("{url}{path}"), "GET", &[], "").await;
        assert_eq!(page.status, 200, "{path}");
        assert_eq!(page.body, "<!doctype html><title>app</title>", "{path}");
    }
    let health = send(&format!("{url}/healthz"), "GET", &[], "").await;
    assert_eq!(health.body.trim(), r#"{"status":"OK"}"#);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_write_through_the_ui_needs_the_csrf_cookie_echoed_in_its_header() {
    let (_engine, url) = engine_with_ui(Some(built_ui("csrf")), None).await;
    let start = format!("{url}/api/v1/namespaces/default/workflows/csrf-probe");
    let body = r#"{"workflowType":{"name":"T"},"taskQueue":{"name":"q"}}"#;

    let no_header = send(&start, "POST", &[("cookie", "_csrf=abc123")], body).await;
    assert_eq!(no_header.status, 400, "{}", no_header.body);
    assert!(
        no_header.body.contains("missing csrf token"),
        "{}",
        no_header.body
    );
    let no_cookie = send(&start, "POST", &[("x-csrf-token", "abc123")], body).await;
    assert_eq!(no_cookie.status, 403, "{}", no_cookie.body);
    let mismatch = send(
        &start,
        "POST",
        &[("cookie", "_csrf=abc123"), ("x-csrf-token", "abc124")],
        body,
    )
    .await;
    assert_eq!(mismatch.status, 403, "{}", mismatch.body);

    let started = send(
        &start,
        "POST",
        &[
            ("cookie", "theme=dark; _csrf=abc123"),
            ("x-csrf-token", "abc123"),
        ],
        body,
    )
    .await;
    assert_eq!(started.status, 200, "{}", started.body);
    // As Temporal's UI server: payloads in full, indented.
    let described = send(
        &format!("{url}/api/v1/namespaces/default/workflows/csrf-probe"),
        "GET",
        &[],
        "",
    )
    .await;
    assert_eq!(described.status, 200);
    assert!(described.body.contains("\n  "), "{}", described.body);
    assert!(described.body.contains("WORKFLOW_EXECUTION_STATUS_RUNNING"));
}

#[tokio::test]
async fn with_an_api_key_the_ui_asks_for_it_and_its_calls_carry_it() {
    let (_engine, url) = engine_with_ui(Some(built_ui("key")), Some("s3cret")).await;
    let list = format!("{url}/api/v1/namespaces/default/workflows");
    let refused = send(&list, "GET", &[], "").await;
    assert_eq!(refused.status, 401);
    assert!(refused.headers[http::header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    assert!(!refused.body.contains("s3cret"));
    // "user:wrong", then "anyone:s3cret".
    let wrong = send(
        &list,
        "GET",
        &[("authorization", "Basic dXNlcjp3cm9uZw==")],
        "",
    )
    .await;
    assert_eq!(wrong.status, 401);
    let page = send(&format!("{url}/"), "GET", &[], "").await;
    assert_eq!(page.status, 401, "the pages too");
    let listed = send(
        &list,
        "GET",
        &[("authorization", "Basic YW55b25lOnMzY3JldA==")],
        "",
    )
    .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
}

#[tokio::test]
async fn an_unbuilt_ui_says_how_to_build_it_while_its_api_serves() {
    let missing = std::env::temp_dir().join(format!("capstan-no-web-ui-{}", std::process::id()));
    let (_engine, url) = engine_with_ui(Some(missing), None).await;
    let page = send(
        &format!("{url}/namespaces/default/workflows"),
        "GET",
        &[],
        "",
    )
    .await;
    assert_eq!(page.status, 503);
    assert!(
        page.body.contains(capstan_engine::WEB_UI_BUILD_COMMAND),
        "{}",
        page.body
    );
    let api = send(&format!("{url}/api/v1/namespaces/default"), "GET", &[], "").await;
    assert_eq!(api.status, 200, "{}", api.body);
}
