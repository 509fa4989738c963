//! Generates the `WorkflowService` and `OperatorService` server traits from the
//! descriptor set that `temporalio-protos` publishes, so no `.proto` file is copied here.

use prost::Message;

/// The services the engine serves: their proto file, the Rust file tonic writes, and the
/// service's name.
const SERVICES: [(&str, &str, &str); 2] = [
    (
        "temporal/api/workflowservice/v1/service.proto",
        "temporal.api.workflowservice.v1.rs",
        "WorkflowService",
    ),
    (
        "temporal/api/operatorservice/v1/service.proto",
        "temporal.api.operatorservice.v1.rs",
        "OperatorService",
    ),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::var("DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH")
        .map_err(|_| "temporalio-protos did not publish its descriptor set")?;
    println!("cargo:rerun-if-changed={path}");
    let bytes = std::fs::read(&path)?;
    let mut set = prost_types::FileDescriptorSet::decode(bytes.as_slice())?;
    // Only the services: their message types are `temporalio_protos`' own.
    set.file
        .retain(|f| SERVICES.iter().any(|(file, _, _)| f.name() == *file));
    if set.file.len() != SERVICES.len() {
        return Err(format!("a service file of {SERVICES:?} is not in {path}").into());
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

/// The generated defaults answer "Not yet implemented"; they answer the engine's own
/// refusal instead (`service::refused`: the service's and method's names and what the
/// engine offers in its place). Also writes every method's name, for the list of those
/// refused.
fn name_unimplemented_methods() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let mut list = String::new();
    for (_, generated, service) in SERVICES {
        for method in patch_stubs(&out_dir.join(generated), service)? {
            list.push_str(&format!("    (\"{service}\", \"{method}\"),\n"));
        }
    }
    std::fs::write(
        out_dir.join("methods.rs"),
        format!("/// Every method of the services the engine serves, `(service, method)`, as Temporal names them.\n#[cfg(test)]\npub(crate) const METHODS: &[(&str, &str)] = &[\n{list}];\n"),
    )?;
    Ok(())
}

/// Patches the stubs of `service` in the file `out`; answers every method's name.
fn patch_stubs(
    out: &std::path::Path,
    service: &str,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(out)?;
    let mut method = String::new();
    let mut methods = Vec::new();
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
                "tonic::Status::unimplemented(\"Not yet implemented\")",
                &format!("crate::service::unimplemented(\"{service}\", \"{pascal}\")"),
            ));
            methods.push(pascal);
        } else {
            patched.push_str(line);
        }
        patched.push('\n');
    }
    std::fs::write(out, patched)?;
    Ok(methods)
}
