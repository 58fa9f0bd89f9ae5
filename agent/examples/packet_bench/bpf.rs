//! The raw `bpf(2)` calls the benchmark needs beyond aya: an empty TC
//! program for the floor, and `BPF_PROG_TEST_RUN` timed by the kernel.

use std::os::fd::{AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd};

use anyhow::{Context as _, Result};

pub const BPF_PROG_LOAD: libc::c_long = 5;
pub const BPF_PROG_TEST_RUN: libc::c_long = 10;
pub const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;

/// The head of `union bpf_attr` for `BPF_PROG_LOAD`; the kernel zero-fills
/// the fields after a shorter struct.
#[repr(C)]
#[derive(Default)]
pub struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// `union bpf_attr` for `BPF_PROG_TEST_RUN`.
#[repr(C)]
#[derive(Default)]
pub struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

pub fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid, initialised bpf_attr prefix of the given size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The empty classifier: `r0 = -1 (TC_ACT_UNSPEC); exit`, loaded from raw
/// instructions (aya loads only ELF objects, and the project's object must
/// not grow a program for a benchmark).
pub fn load_empty() -> Result<OwnedFd> {
    // struct bpf_insn { u8 code; u8 dst:4, src:4; s16 off; s32 imm; }
    let mov_r0_minus_1: [u8; 8] = [0xb7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
    let exit: [u8; 8] = [0x95, 0, 0, 0, 0, 0, 0, 0];
    let insns = [mov_r0_minus_1, exit];
    let license = c"GPL";
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_SCHED_CLS,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    attr.prog_name[..5].copy_from_slice(b"empty");
    let fd = bpf(BPF_PROG_LOAD, &mut attr).context("BPF_PROG_LOAD of the empty program")?;
    // SAFETY: the kernel just handed us this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

pub struct RunResult {
    pub retval: u32,
    pub ns: u32,
    pub out: Vec<u8>,
}

/// One `BPF_PROG_TEST_RUN`: the same syscall for the empty program and for
/// hairpin's, so that both are timed the same way (by the kernel).
pub fn test_run(prog: BorrowedFd<'_>, data: &[u8], repeat: u32) -> Result<RunResult> {
    let mut out = vec![0u8; data.len() + 256];
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in: data.len() as u32,
        data_size_out: out.len() as u32,
        data_in: data.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat,
        ..Default::default()
    };
    bpf(BPF_PROG_TEST_RUN, &mut attr).context("BPF_PROG_TEST_RUN")?;
    out.truncate(attr.data_size_out as usize);
    Ok(RunResult {
        retval: attr.retval,
        ns: attr.duration,
        out,
    })
}
