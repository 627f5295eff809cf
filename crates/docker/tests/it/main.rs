//! The integration tests of `salvor-docker`: one test binary, one module per former test file.

mod containers_engine;
mod containers_hostile;
mod devicemapper;
mod model_engine;
