//! store-edge's gRPC API, generated from `proto/storeedge/v1/*.proto`: the record messages the
//! gateway stores and serves, the `Sync` service's client and server, and the encoded file
//! descriptor set for gRPC server reflection.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// Package `storeedge.v1`.
pub mod v1 {
    tonic::include_proto!("storeedge.v1");
}

/// The encoded `FileDescriptorSet` of every proto file, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/storeedge_descriptor.bin"));
