//! Helpers shared by the CLI's test binaries.

pub mod lambda;
pub mod ledger;
pub mod moto;
