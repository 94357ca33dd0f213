//! Server crate: HTTP routes, services, database backends and blob storage.

pub mod photos;
