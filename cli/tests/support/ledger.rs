//! The run ledger table in moto, created as template.yaml declares RunLedgerTable: the tests of
//! `runs`, `usage`, `rerun` and `schedules backfill` read what the function's own ledger wrote.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use super::moto::Moto;

/// Creates the run ledger table `name` in `moto` through scripts/create-ledger-table.py, so the
/// template stays the table's one definition (its key, every index, the TTL).
pub fn create_ledger_table(moto: &Moto, name: &str) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let created = Command::new(root.join(".tools/venv-aws/bin/python"))
        .arg(root.join("scripts/create-ledger-table.py"))
        .args([moto.endpoint.as_str(), name])
        .status()
        .unwrap();
    assert!(
        created.success(),
        "create-ledger-table.py {name}: {created}"
    );
}
