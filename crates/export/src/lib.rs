//! export: to be written.
