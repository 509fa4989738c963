//! `capstan stubs`: reads a manifest file, writes the client, and explains what is wrong.

use std::process::{Command, Output};

fn capstan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn temp_file(name: &str, text: &str) -> String {
    let path = std::env::temp_dir().join(format!("capstan-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn stubs_writes_a_python_client_from_a_manifest() {
    let manifest = temp_file(
        "manifest.json",
        r##"{
            "version": 1,
            "dialect": "https://json-schema.org/draft/2020-12/schema",
            "task_queue": "greetings",
            "workflows": [{
                "name": "Greet",
                "run": { "name": "Greet", "args": [{ "name": "who", "schema": { "$ref": "#/$defs/Who" } }],
                         "output": { "type": "string" } },
                "signals": [], "queries": [], "updates": []
            }],
            "activities": [],
            "$defs": { "Who": { "type": "object", "properties": { "name": { "type": "string" } },
                                "required": ["name"] } }
        }"##,
    );
    let out = format!("{manifest}.py");
    let output = capstan(&["stubs", "--lang", "python", &manifest, "--out", &out]);
    assert!(output.status.success(), "{output:?}");
    let code = std::fs::read_to_string(&out).unwrap();
    assert!(code.contains("TASK_QUEUE = \"greetings\""), "{code}");
    assert!(code.contains("class Who(BaseModel):"), "{code}");
    assert!(code.contains("    name: StrictStr\n"), "{code}");
    assert!(
        code.contains("workflow_id: str,\n        who: Who,"),
        "{code}"
    );
    for path in [manifest, out] {
        std::fs::remove_file(path).ok();
    }
}

#[test]
fn stubs_explains_a_wrong_manifest_or_command_line() {
    let manifest = temp_file("old.json", r#"{ "version": 99, "task_queue": "q" }"#);
    let output = capstan(&["stubs", "--lang", "python", &manifest]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not a Capstan manifest of version 1 (found version 99)"),
        "{stderr}"
    );
    std::fs::remove_file(manifest).ok();

    let output = capstan(&["stubs", "--lang", "cobol", "m.json"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown language `cobol`"), "{stderr}");
    assert!(stderr.contains("usage:"), "{stderr}");
}
