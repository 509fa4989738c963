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
        .compile_fds(set)?;
    Ok(())
}
