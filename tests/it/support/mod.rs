//! Support code shared by the integration tests. Each module says which tests use it.

pub mod apply_harness;
pub mod binary_world;
pub mod http_stub;
pub mod k8s_double;
pub mod sandbox_client;
