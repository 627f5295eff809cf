//! The integration tests of `salvor-export`: one test binary, one module per former test file.

mod common;

mod engine;
mod engine_legacy;
mod roundtrip;
