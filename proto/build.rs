//! Compiles proto/huren/v1/*.proto with the protoc that ships inside the protoc-bin-vendored
//! crate, so a fresh machine builds with cargo alone.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing else reads the environment here.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let descriptor =
        std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("huren_descriptor.bin");
    tonic_prost_build::configure()
        .file_descriptor_set_path(descriptor)
        .compile_protos(
            &["proto/huren/v1/log.proto", "proto/huren/v1/node.proto"],
            &["proto"],
        )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
