//! The integration tests of `salvor-source`: one test binary, one module per former test file.

mod common;

mod corpus;
mod dir_source;
mod resolve;
mod tar_source;
