//! hairpin's agent: loads the datapath, applies the configuration to its
//! maps, attaches the programs to the node's interfaces and follows them.

pub mod attach;
pub mod caps;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod doctor;
pub mod family;
pub mod filter;
pub mod flows;
pub mod gc;
pub mod health;
pub mod hooks;
pub mod inspect;
pub mod kernel;
pub mod links;
pub mod listener;
pub mod loader;
pub mod map_keys;
pub mod metrics;
pub mod migrate;
pub mod monitor;
pub mod netkit;
pub mod pins;
pub mod pod_side;
pub mod reconcile;
pub mod relief;
pub mod salvage;
pub mod sockets;
pub mod sources;
