//! The fast path's XDP program: its C source (`bpf/`, `include/`), the object compiled from it
//! (committed as `fastpath.bpf.o`, embedded here, so building needs no clang), its ABI mirrored
//! in Rust ([`abi`]), and its loader ([`XdpProgram`]).
//!
//! The program drops what no configuration asks for (malformed frames, fragments, unbound
//! destinations, unconfigured protocols and ports), passes ARP, ND and traffic to addresses we
//! do not own to the kernel, and redirects the rest to the queue's AF_XDP socket. Its maps are
//! written from the same compiled [`fastpath::tables::Tables`] as the userspace pipeline.
//!
//! Rebuild the object after changing the C: `xdp-prog/build.sh` (needs clang and libbpf-dev);
//! `xdp-prog/build.sh --check` verifies that the committed object matches its source (CI runs
//! it), and a test fails when the recorded source hash is stale.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod abi;
pub mod r#gen;
mod loader;

pub use r#gen::{Flood, GEN_OBJECT, GenConfig, GenError, Generator};
pub use loader::{
    AttachMode, DROP_ALL, GateState, Installed, MAX_ACCESS, MAX_DESTS, MAX_PORT_SETS, ModeRequest,
    PROGRAM, PROGRAM_NO_GATE, XdpError, XdpProgram, clock_offset_ns,
};

/// The compiled object (8-byte aligned, as ELF parsing wants).
pub static OBJECT: &[u8] = aya::include_bytes_aligned!("../fastpath.bpf.o");

/// The lab's VLAN tagger (tc programs `lab_vlan_push`/`lab_vlan_pop`, see `bpf/lab_vlan.bpf.c`):
/// a stand-in for a VLAN sub-interface on kernels without 802.1Q support.
pub static LAB_VLAN_OBJECT: &[u8] = include_bytes!("../lab_vlan.bpf.o");

/// The live bench's meter (`lab_count_synacks`, see `bpf/lab_count.bpf.c`): counts and drops
/// the SYN-ACKs that reach the client's veth ([`SynAckMeter`]).
pub static LAB_COUNT_OBJECT: &[u8] = aya::include_bytes_aligned!("../lab_count.bpf.o");

mod meter;
pub use meter::SynAckMeter;

/// The skb mark that asks the lab's tagger for VLAN `vid`: `LAB_VLAN_MARK | vid`.
pub const LAB_VLAN_MARK: u32 = 0x10000;

#[cfg(test)]
mod test {
    use sha2::{Digest, Sha256};

    /// The committed object was built from the committed source: `build.sh` records the
    /// SHA-256 of the sources next to the object; change the C without rebuilding and this
    /// fails (CI additionally rebuilds with clang and compares the bytes).
    #[test]
    fn the_object_is_not_older_than_its_source() {
        let mut h = Sha256::new();
        for src in [
            include_bytes!("../bpf/fastpath.bpf.c").as_slice(),
            include_bytes!("../include/fastpath_abi.h"),
            include_bytes!("../include/maps.h"),
            include_bytes!("../bpf/lab_vlan.bpf.c"),
            include_bytes!("../bpf/gen.bpf.c"),
            include_bytes!("../bpf/lab_count.bpf.c"),
        ] {
            h.update(src);
        }
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            include_str!("../fastpath.bpf.o.source-sha256").trim(),
            "xdp-prog/fastpath.bpf.o is older than its source: run xdp-prog/build.sh (needs clang and libbpf-dev) and commit the object"
        );
    }

    #[test]
    fn the_object_has_our_programs_and_maps() {
        let text = String::from_utf8_lossy(super::OBJECT);
        for name in [
            super::PROGRAM,
            super::DROP_ALL,
            super::PROGRAM_NO_GATE,
            "fp_gen",
            "fp_cookies",
            "fp_cookie_live",
            "fp_flows",
            "fp_access4_0",
            "fp_access6_1",
            "fp_dest4_0",
            "fp_dest6_1",
            "fp_ports_0",
            "fp_counters",
            "fp_xsks",
        ] {
            assert!(text.contains(name), "{name} missing from the object");
        }
    }
}
