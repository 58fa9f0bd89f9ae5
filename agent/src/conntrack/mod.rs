//! The conntrack tables from the agent's side: finding and ending flows,
//! sweeping expired ones, and making room in a full table.

pub mod flows;
pub mod pressure;
pub mod sweep;
