//! One module per command group; each has an `Args` (its clap arguments and
//! help) and a `run`.

pub mod contents;
pub mod create;
pub mod deps;
pub mod diff;
pub mod docs;
pub mod extract;
pub mod import_deb;
pub mod info;
pub mod install;
pub mod listing;
pub mod owner;
pub mod repo;
pub mod root;
pub mod status;
