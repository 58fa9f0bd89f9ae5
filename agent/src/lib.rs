//! hairpin's agent: loads the datapath, applies the configuration to its
//! maps, attaches the programs to the node's interfaces and follows them.

pub mod caps;
pub mod cli;
pub mod config;
pub mod conntrack;
pub mod daemon;
pub mod datapath;
pub mod desired;
pub mod doctor;
pub mod links;
pub mod listener;
pub mod monitor;
pub mod reconcile;
pub mod sources;
