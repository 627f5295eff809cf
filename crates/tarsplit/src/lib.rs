//! tar-split: to be written.
