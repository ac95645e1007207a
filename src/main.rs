//! Lambda entry point: wires configuration, shared clients and the handler to `lambda_runtime`.

fn main() {}
