//! The phone side of the inspection platform, for Kotlin (Android), Swift (iOS) and Python
//! (tests) through UniFFI. It wraps `sync-core` — the same documents, rules and sync protocol
//! the server runs — with what only a phone needs: a durable SQLite store ([`store`]), the HTTP
//! transport, photo intake ([`photo`]) and listeners.
//!
//! This is the only crate that names `uniffi`. It never re-exports sync-core types across the
//! FFI: [`records`] mirrors them. See `README.md` for the files, commands and decisions.

uniffi::setup_scaffolding!();

mod autosync;
mod client;
pub mod error;
pub mod photo;
pub mod records;
pub mod store;

pub use client::{
    ChangeListener, InspectionClient, ListenerHandle, SyncFailure, SyncHandle, SyncObserver,
};
pub use error::BridgeError;
pub use sync_core;
