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
    write_http_descriptors()?;
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

/// Writes `http_descriptors.bin`: the services' files and every file they import, for the
/// HTTP API (its routes are the methods' `google.api.http` options, its JSON the messages'
/// descriptors).
///
/// The descriptor set `temporalio-protos` publishes has lost those options (they are
/// extensions, which `prost_types` drops), so the services' `.proto` files, which that
/// crate ships, are compiled again here with protox, keeping them.
fn write_http_descriptors() -> Result<(), Box<dyn std::error::Error>> {
    let protos = protos_dir()?;
    println!("cargo:rerun-if-changed={}", protos.display());
    let includes = ["api_upstream", "grpc", ""].map(|dir| protos.join(dir));
    let mut compiler = protox::Compiler::new(includes)?;
    compiler.include_imports(true).include_source_info(false);
    for (file, _, _) in SERVICES {
        compiler.open_file(file)?;
    }
    // What errors carry in their details.
    compiler.open_file("temporal/api/errordetails/v1/message.proto")?;
    compiler.open_file("google/rpc/status.proto")?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("http_descriptors.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    Ok(())
}

/// The `protos` folder of the `temporalio-protos` package this build uses, as `cargo
/// metadata` locates it (a registry, a vendored copy or a git checkout alike).
fn protos_dir() -> Result<std::path::PathBuf, Box<dyn std::error::Error>> {
    let cargo = std::env::var("CARGO")?;
    let manifest =
        std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("Cargo.toml");
    let target = std::env::var("TARGET")?;
    let metadata = |offline: bool| {
        let mut cmd = std::process::Command::new(&cargo);
        cmd.args(["metadata", "--format-version", "1", "--manifest-path"])
            .arg(&manifest)
            // Only this platform's packages (others may never have been downloaded).
            .args(["--filter-platform", &target]);
        if offline {
            cmd.arg("--offline");
        }
        cmd.output()
    };
    // Offline first: a build has the packages it compiles. A build of one crate may lack
    // the manifests of other members' dev-dependencies, which cargo then fetches.
    let mut output = metadata(true)?;
    if !output.status.success() {
        output = metadata(false)?;
    }
    if !output.status.success() {
        return Err(format!(
            "`cargo metadata` failed, so the temporalio-protos sources (for the HTTP API's \
             routes) cannot be found: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "temporalio-protos")
        .and_then(|p| p["manifest_path"].as_str())
        .and_then(|m| std::path::Path::new(m).parent())
        .map(|dir| dir.join("protos"))
        .filter(|dir| dir.is_dir())
        .ok_or_else(|| "cannot find the `protos` folder of the temporalio-protos package".into())
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
