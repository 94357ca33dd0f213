//! The shared core of the inspection platform: domain types, typed Automerge documents, the
//! rules of who may change what ([`policy`]), how a hazard moves between states
//! ([`rectification`]), validation of incoming changes ([`validate`]), the sync protocol
//! ([`protocol`], [`engine`]), the document-store trait ([`store`]) and the checks made on photo
//! bytes before any decoder runs ([`photo`]).
//!
//! It is *sans I/O*: no runtime, no database, no HTTP. The phone (`mobile-bridge`) and the
//! server run exactly this code, so the rules live once.

pub mod actions;
pub mod bounds;
pub mod doc;
pub mod domain;
pub mod edit;
pub mod engine;
pub mod ids;
pub mod limits;
pub mod photo;
pub mod policy;
pub mod protocol;
pub mod rectification;
pub mod store;
pub mod validate;

pub use automerge;
pub use autosurgeon;
