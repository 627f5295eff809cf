//! The integration tests of `salvor`: one test binary, one module per former test file.

mod common;

mod containerd_cli;
mod containerd_load;
mod containers_cli;
mod containers_fs;
mod corpus;
mod debian;
mod devicemapper;
mod disk_image;
mod drivers;
mod engine_fixtures;
mod hostile;
mod report;
mod tamper;
mod timeline;
