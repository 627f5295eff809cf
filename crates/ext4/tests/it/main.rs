//! The integration tests of `salvor-ext4`: one test binary, one module per former test file.

mod common;

mod differential;
mod hostile;
