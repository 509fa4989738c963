//! Generates the `WorkflowService` server trait from the descriptor set that
//! `temporalio-protos` publishes, so no `.proto` file is copied here.

use prost::Message;

const SERVICE_FILE: &str = "temporal/api/workflowservice/v1/service.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::var("DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH")
        .map_err(|_| "temporalio-protos did not publish its descriptor set")?;
    println!("cargo:rerun-if-changed={path}");
    let bytes = std::fs::read(&path)?;
    let mut set = prost_types::FileDescriptorSet::decode(bytes.as_slice())?;
    // Only the service: its message types are `temporalio_protos`' own.
    set.file.retain(|f| f.name() == SERVICE_FILE);
    if set.file.is_empty() {
        return Err(format!("{SERVICE_FILE} is not in {path}").into());
    }
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .generate_default_stubs(true)
        .extern_path(".temporal", "::temporalio_protos::temporal")
        // Prost's codec, but an undecodable request is INVALID_ARGUMENT, not INTERNAL.
        .codec_path("crate::service::Codec")
        .compile_fds(set)?;
    name_unimplemented_methods()
}

/// The generated defaults answer "Not yet implemented"; say which method instead, so a
/// client learns what the engine lacks.
fn name_unimplemented_methods() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?)
        .join("temporal.api.workflowservice.v1.rs");
    let text = std::fs::read_to_string(&out)?;
    let mut method = String::new();
    let mut patched = String::with_capacity(text.len() + 8192);
    for line in text.lines() {
        if let Some(rest) = line.trim_start().strip_prefix("async fn ") {
            method = rest.split('(').next().unwrap_or_default().to_owned();
        }
        if line.contains("tonic::Status::unimplemented(\"Not yet implemented\")") {
            let pascal: String = method
                .split('_')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect();
            patched.push_str(&line.replace(
                "\"Not yet implemented\"",
                &format!("\"WorkflowService/{pascal} is not implemented by the Capstan engine\""),
            ));
        } else {
            patched.push_str(line);
        }
        patched.push('\n');
    }
    std::fs::write(out, patched)?;
    Ok(())
}
