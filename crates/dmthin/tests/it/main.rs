//! The integration tests of `salvor-dmthin`: one test binary, one module per former test file.

mod common;

mod hostile;
mod pool;
