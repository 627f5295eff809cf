//! The integration tests of `salvor-docker`: one test binary, one module per former test file.

mod audit_engine;
mod containers_engine;
mod containers_hostile;
