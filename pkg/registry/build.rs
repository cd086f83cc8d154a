//! Compiles the vendored etcd protos with `protox` (no system `protoc`): clients only.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../../third_party/etcd");
    let fds = protox::compile(["etcdserverpb/rpc.proto"], ["../../third_party/etcd"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .emit_rerun_if_changed(false)
        .compile_fds(fds)?;
    Ok(())
}
