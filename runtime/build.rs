//! Hands the path of the Temporal API descriptor set that `temporalio-protos` compiles to
//! the `testing` module, which decodes captured histories from Temporal's proto JSON.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH");
    if let Ok(path) = std::env::var("DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH") {
        println!("cargo:rustc-env=CAPSTAN_TEMPORAL_DESCRIPTORS={path}");
    }
}
