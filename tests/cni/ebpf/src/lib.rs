//! Empty: this library target lets the agent's build script depend on this
//! crate, so that cargo rebuilds the eBPF object when its sources change.
#![no_std]
