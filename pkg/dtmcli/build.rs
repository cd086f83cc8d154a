//! Compiles DTM's gRPC contracts with `protox` (no system `protoc`): `proto/dtmgimp.proto`, the
//! coordinator's API (the SDK's client and the coordinator's server), and `proto/wf.proto`, the
//! workflow resume service (the SDK's server and the coordinator's resume call), so dtmcli needs
//! no other crate's protos.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // protox knows google/protobuf/*.proto by itself.
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(["dtmgimp.proto"])?;
    // The coordinator's reflection describes what it serves: dtmgimp alone.
    std::fs::write(
        out_dir.join("dtmgimp.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    compiler.open_files(["wf.proto"])?;
    let mut fds = compiler.file_descriptor_set();
    fds.file
        .retain(|f| matches!(f.name(), "dtmgimp.proto" | "wf.proto"));
    tonic_prost_build::configure()
        .emit_rerun_if_changed(false)
        .codec_path("::kit::codec::ProstCodec")
        .compile_fds(fds)?;
    Ok(())
}
