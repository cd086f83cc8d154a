//! The contract of every service: the Rust generated from `api/**/*.proto` by `build.rs` (a new
//! proto file is found by itself: nothing here or in build.rs names the services).
//!
//! Each package module holds the prost messages, the tonic client and server, and — from the
//! `google.api.http` annotations — `register_<service>_http_server`, which serves the same service
//! struct over HTTP/JSON. Error reason enums (kratos `errors.proto` style) get `code()` and
//! `error()`.

#![warn(missing_docs)]

use std::sync::OnceLock;

use prost_reflect::DescriptorPool;

// One module per proto file's directory, written by build.rs: `api::stock::v1` from
// `stock/v1/stock.proto`, `api::order::v1`, …
include!(concat!(env!("OUT_DIR"), "/modules.rs"));

/// The encoded `FileDescriptorSet` of every proto and its imports, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));

/// The descriptors of every proto, decoded once; the HTTP transcoder reads message shapes here.
pub fn descriptor_pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(FILE_DESCRIPTOR_SET).expect("build.rs wrote a valid descriptor set")
    })
}
