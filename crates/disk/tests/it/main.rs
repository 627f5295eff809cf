//! The integration tests of `salvor-disk`: one test binary, one module per former test file.

mod common;

mod containers;
mod hostile;
mod lvm;
