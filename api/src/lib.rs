//! The contract of every service: the Rust generated from `api/**/*.proto` by `build.rs`.
//!
//! Each package module holds the prost messages, the tonic client and server, and — from the
//! `google.api.http` annotations — `register_<service>_http_server`, which serves the same service
//! struct over HTTP/JSON. Error reason enums (kratos `errors.proto` style) get `code()` and `error()`.

#![warn(missing_docs)]

use std::sync::OnceLock;

use prost_reflect::DescriptorPool;

/// `api.stock.v1`: the stock service.
pub mod stock {
    /// Version 1 of the stock API.
    pub mod v1 {
        #![allow(missing_docs)]
        tonic::include_proto!("api.stock.v1");
        include!(concat!(env!("OUT_DIR"), "/api.stock.v1.kit.rs"));
    }
}

/// `api.order.v1`: the order service.
pub mod order {
    /// Version 1 of the order API.
    pub mod v1 {
        #![allow(missing_docs)]
        tonic::include_proto!("api.order.v1");
        include!(concat!(env!("OUT_DIR"), "/api.order.v1.kit.rs"));
    }
}

/// `dtmgimp`: the DTM coordinator's gRPC API (package name fixed by DTM).
pub mod dtm {
    /// The only version DTM has.
    pub mod v1 {
        #![allow(missing_docs)]
        tonic::include_proto!("dtmgimp");
    }
}

/// The encoded `FileDescriptorSet` of every proto and its imports, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));

/// The descriptors of every proto, decoded once; the HTTP transcoder reads message shapes here.
pub fn descriptor_pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(FILE_DESCRIPTOR_SET).expect("build.rs wrote a valid descriptor set")
    })
}
