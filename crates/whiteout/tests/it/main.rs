//! The integration tests of `salvor-whiteout`: one test binary, one module per former test file.

mod engine;
mod hostile;
mod mounts;
