//! The integration tests of `salvor-tarsplit`: one test binary, one module per former test file.

mod common;

mod behaviour;
mod headers;
mod roundtrip;
