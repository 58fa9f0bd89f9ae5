//! The datapath from the agent's side: what the kernel offers, loading (or
//! adopting) the programs and maps, attaching them to interfaces, pods'
//! namespaces and cgroups, the pins that keep them, and migrating the maps
//! of an earlier release.

pub mod addr;
pub mod attach;
pub mod clock;
pub mod hooks;
pub mod kernel;
pub mod loader;
pub mod map_keys;
pub mod migrate;
pub mod netkit;
pub mod pinned;
pub mod pins;
pub mod pod_side;
pub mod sockets;
pub mod unreadable;
