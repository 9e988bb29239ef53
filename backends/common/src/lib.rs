//! Jobs every remote key service has, written once: a lazy per-key client
//! cache, one line from an error's cause chain, recognising a TLS
//! certificate the machine does not trust, waiting no longer than the
//! attempt's deadline, and the `created_at` of a newly wrapped entry.
//!
//! The trait crate (`rsops-keysource`) stays the seam itself; this crate is
//! what backends share beside it.

#![deny(missing_docs)]

mod cache;
mod chain;
pub mod created_at;
pub mod deadline;

pub use cache::ClientCache;
pub use chain::{cause_chain, is_untrusted_certificate};
