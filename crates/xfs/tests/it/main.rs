//! The integration tests of `salvor-xfs`: one test binary, one module per former test file.

mod common;

mod differential;
mod hostile;
mod log;
