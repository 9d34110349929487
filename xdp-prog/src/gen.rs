//! The in-kernel flood generator (`bpf/gen.bpf.c`): loaded here, configured through its
//! `gen_cfg` map, run with `BPF_PROG_RUN` in live-frames mode (`BPF_F_TEST_XDP_LIVE_FRAMES`,
//! kernel 5.18 and later), counted through its per-CPU `gen_counters` map.
//!
//! One [`Generator`] may be run from several threads at once: each [`Generator::run_live`] is
//! one syscall that sends `repeat` frames from the calling CPU.

use aya::maps::{Array, MapData, MapError, PerCpuArray};
use aya::programs::{ProgramError, TestRun, TestRunAttrs, TestRunOptions, Xdp};
use aya::{Ebpf, EbpfError};

/// The generator program in [`GEN_OBJECT`].
pub const GEN_PROGRAM: &str = "gen_flood";
/// Most frames the kernel takes in one live-frames batch (`TEST_XDP_MAX_BATCH`).
pub const MAX_BATCH: u32 = 256;

/// The compiled generator (8-byte aligned, as ELF parsing wants).
pub static GEN_OBJECT: &[u8] = aya::include_bytes_aligned!("../gen.bpf.o");

/// Which flood (`GEN_UDP`, `GEN_SYN`, `GEN_ACK` in the C).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Flood {
    /// UDP datagrams: random source address and port.
    Udp = 1,
    /// TCP SYNs: random source address and port, random ISN.
    Syn = 2,
    /// TCP ACKs: random source address and port, random sequence and acknowledgement numbers.
    Ack = 3,
}

/// What the program makes of the template frame (mirror of `struct gen_cfg`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenConfig {
    /// [`Flood`] as `u32`.
    pub kind: u32,
    /// Explicit padding.
    pub pad: u32,
    /// Source prefix with its host bits zero, in network order (IPv4: the first 4 bytes).
    pub src: [u8; 16],
    /// Host bits of the source, set where the program draws them at random.
    pub mask: [u8; 16],
    /// Lowest source port (host order).
    pub sport_lo: u16,
    /// Highest source port, inclusive.
    pub sport_hi: u16,
    /// Lowest destination port (host order).
    pub dport_lo: u16,
    /// Highest destination port, inclusive.
    pub dport_hi: u16,
}

const _: () = assert!(core::mem::size_of::<GenConfig>() == 48);

// SAFETY: `#[repr(C)]` integers and byte arrays without implicit padding (`pad` makes it
// explicit; the size assertion above checks the layout), so every byte is initialized and any
// byte pattern is a valid value.
#[allow(unsafe_code)]
unsafe impl aya::Pod for GenConfig {}

impl GenConfig {
    /// A flood from `src` (host bits random) with ports drawn from the two inclusive ranges.
    pub fn new(flood: Flood, src: ipnet::IpNet, sports: (u16, u16), dports: (u16, u16)) -> Self {
        let mut c = GenConfig {
            kind: flood as u32,
            sport_lo: sports.0,
            sport_hi: sports.1,
            dport_lo: dports.0,
            dport_hi: dports.1,
            ..GenConfig::default()
        };
        match src {
            ipnet::IpNet::V4(n) => {
                c.src[..4].copy_from_slice(&n.network().octets());
                c.mask[..4].copy_from_slice(&n.hostmask().octets());
            }
            ipnet::IpNet::V6(n) => {
                c.src = n.network().octets();
                c.mask = n.hostmask().octets();
            }
        }
        c
    }
}

/// Why the generator could not run.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// The object did not load (not root, or no BPF in this kernel).
    #[error(
        "loading the generator's BPF object failed (this needs root or CAP_BPF + CAP_NET_ADMIN): {0}"
    )]
    Load(#[source] EbpfError),
    /// The program is missing from the object or the verifier refused it.
    #[error("{what}: {source}")]
    Program {
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: ProgramError,
    },
    /// A map could not be read or written.
    #[error("generator map {map}: {source}")]
    Map {
        /// The map.
        map: &'static str,
        /// The error.
        #[source]
        source: MapError,
    },
    /// The object lacks a program or map (rebuild it with xdp-prog/build.sh).
    #[error("the generator object has no {0}: rebuild it with xdp-prog/build.sh")]
    Missing(&'static str),
    /// Live frames need kernel 5.18 or later.
    #[error(
        "the in-kernel generator needs Linux 5.18 or later (BPF_F_TEST_XDP_LIVE_FRAMES); this is {0}: use --engine xsk"
    )]
    KernelTooOld(String),
    /// The kernel refused live frames outright (`EPERM` as root): its security policy (a
    /// BPF LSM program, lockdown, or a missing capability) forbids `BPF_F_TEST_XDP_LIVE_FRAMES`,
    /// while the same run without the flag is allowed.
    #[error(
        "the kernel refused BPF_PROG_RUN in live-frames mode (EPERM): this needs root with every capability and a kernel whose security policy (BPF LSM, lockdown) allows BPF_F_TEST_XDP_LIVE_FRAMES; use --engine xsk here"
    )]
    Refused,
    /// A signal arrived during the run (`EINTR`): frames up to then were sent.
    #[error("interrupted by a signal")]
    Interrupted,
    /// The kernel refused the live-frames run.
    #[error(
        "BPF_PROG_RUN in live-frames mode on ifindex {ifindex} queue {queue}: {source} (needs root, kernel 5.18+, an up interface with that RX queue; on a veth the peer needs an XDP program or GRO for NAPI)"
    )]
    Run {
        /// The interface.
        ifindex: u32,
        /// The RX queue in the context.
        queue: u32,
        /// The error.
        #[source]
        source: ProgramError,
    },
}

/// Whether a kernel release string (`6.1.0-18-amd64`) is 5.18 or later.
pub fn kernel_has_live_frames(release: &str) -> bool {
    let mut it = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().unwrap_or(0));
    let (major, minor) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (major, minor) >= (5, 18)
}

/// The loaded generator.
#[derive(Debug)]
pub struct Generator {
    ebpf: Ebpf,
}

impl Generator {
    /// Checks the kernel, loads the object and its program.
    ///
    /// # Errors
    /// [`GenError::KernelTooOld`] before 5.18; [`GenError::Load`] without privileges;
    /// [`GenError::Program`] when the verifier refuses the program.
    pub fn load() -> Result<Generator, GenError> {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        if !kernel_has_live_frames(release.trim()) {
            return Err(GenError::KernelTooOld(release.trim().to_string()));
        }
        let mut ebpf = Ebpf::load(GEN_OBJECT).map_err(GenError::Load)?;
        let p: &mut Xdp = ebpf
            .program_mut(GEN_PROGRAM)
            .ok_or(GenError::Missing(GEN_PROGRAM))?
            .try_into()
            .map_err(|source| GenError::Program {
                what: "not an XDP program",
                source,
            })?;
        p.load().map_err(|source| GenError::Program {
            what: "loading the generator program (verifier)",
            source,
        })?;
        Ok(Generator { ebpf })
    }

    /// Sets what the program makes of the template.
    ///
    /// # Errors
    /// [`GenError::Map`], [`GenError::Missing`].
    pub fn configure(&mut self, cfg: &GenConfig) -> Result<(), GenError> {
        let map = self
            .ebpf
            .map_mut("gen_cfg")
            .ok_or(GenError::Missing("gen_cfg"))?;
        let mut a: Array<&mut MapData, GenConfig> =
            Array::try_from(map).map_err(|source| GenError::Map {
                map: "gen_cfg",
                source,
            })?;
        a.set(0, *cfg, 0).map_err(|source| GenError::Map {
            map: "gen_cfg",
            source,
        })
    }

    fn program(&self) -> Result<&Xdp, GenError> {
        self.ebpf
            .program(GEN_PROGRAM)
            .ok_or(GenError::Missing(GEN_PROGRAM))?
            .try_into()
            .map_err(|source| GenError::Program {
                what: "not an XDP program",
                source,
            })
    }

    /// Sends `frame` `repeat` times out of interface `ifindex` (live frames, `XDP_TX` in the
    /// program), `batch` frames at a time, from the calling CPU. Returns when done, or early
    /// with an error when a signal arrives (`EINTR`).
    ///
    /// # Errors
    /// [`GenError::Refused`] when the kernel's policy forbids live frames;
    /// [`GenError::Interrupted`] on a signal; [`GenError::Run`] otherwise (no such interface or
    /// queue, a kernel without live frames).
    pub fn run_live(
        &self,
        frame: &[u8],
        ifindex: u32,
        queue: u32,
        repeat: u32,
        batch: u32,
    ) -> Result<(), GenError> {
        let ctx_bytes = XdpMd::received(frame, ifindex, queue).to_bytes();
        let opts = TestRunOptions {
            data_in: Some(frame),
            ctx_in: Some(&ctx_bytes),
            repeat,
            attrs: TestRunAttrs::new().xdp_live_frames(batch.clamp(1, MAX_BATCH)),
            ..TestRunOptions::default()
        };
        self.program()?
            .test_run(opts)
            .map(|_| ())
            .map_err(|source| {
                let errno = match &source {
                    ProgramError::SyscallError(e) => e.io_error.raw_os_error(),
                    _ => None,
                };
                match errno {
                    Some(libc::EPERM) => GenError::Refused,
                    Some(libc::EINTR) => GenError::Interrupted,
                    _ => GenError::Run {
                        ifindex,
                        queue,
                        source,
                    },
                }
            })
    }

    /// Runs `frame` through the program once, without sending (plain `BPF_PROG_TEST_RUN`):
    /// the action (`XDP_TX` 3 for a frame it can vary) and the frame as the program left it.
    ///
    /// # Errors
    /// [`GenError::Program`] when the kernel refuses the run.
    pub fn run_once(&self, frame: &[u8]) -> Result<(u32, Vec<u8>), GenError> {
        self.run_once_ctx(frame, None)
    }

    /// As [`Generator::run_once`], with the context [`Generator::run_live`] gives the kernel
    /// (the frame as received on `ifindex`, RX queue `queue`), which the kernel checks the same
    /// way in both modes: an interface that does not exist, or a queue it does not have, is
    /// refused.
    ///
    /// # Errors
    /// [`GenError::Program`] when the kernel refuses the run or its context.
    pub fn run_once_on(
        &self,
        frame: &[u8],
        ifindex: u32,
        queue: u32,
    ) -> Result<(u32, Vec<u8>), GenError> {
        self.run_once_ctx(frame, Some(XdpMd::received(frame, ifindex, queue)))
    }

    fn run_once_ctx(&self, frame: &[u8], ctx: Option<XdpMd>) -> Result<(u32, Vec<u8>), GenError> {
        let mut out = vec![0u8; frame.len() + 256];
        let ctx_bytes = ctx.map(XdpMd::to_bytes);
        let opts = TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ctx_in: ctx_bytes.as_ref().map(<[u8; 24]>::as_slice),
            repeat: 1,
            ..TestRunOptions::default()
        };
        let r = self
            .program()?
            .test_run(opts)
            .map_err(|source| GenError::Program {
                what: "BPF_PROG_TEST_RUN",
                source,
            })?;
        out.truncate(r.data_size_out as usize);
        Ok((r.return_value, out))
    }

    /// Packets sent and templates refused so far, summed over CPUs.
    ///
    /// # Errors
    /// [`GenError::Map`], [`GenError::Missing`].
    pub fn counters(&self) -> Result<(u64, u64), GenError> {
        let map = self
            .ebpf
            .map("gen_counters")
            .ok_or(GenError::Missing("gen_counters"))?;
        let err = |source| GenError::Map {
            map: "gen_counters",
            source,
        };
        let a: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(map).map_err(err)?;
        let sum =
            |slot: u32| -> Result<u64, GenError> { Ok(a.get(&slot, 0).map_err(err)?.iter().sum()) };
        Ok((sum(0)?, sum(1)?))
    }
}

/// `struct xdp_md` as `BPF_PROG_RUN` takes it in `ctx_in`: `data_end` must be the frame's
/// length, `data` and `data_meta` zero (no metadata), `egress_ifindex` zero.
#[derive(Debug, Clone, Copy)]
struct XdpMd {
    data: u32,
    data_end: u32,
    data_meta: u32,
    ingress_ifindex: u32,
    rx_queue_index: u32,
    egress_ifindex: u32,
}

impl XdpMd {
    /// `frame` as received on `ifindex`, RX queue `queue`.
    fn received(frame: &[u8], ifindex: u32, queue: u32) -> XdpMd {
        XdpMd {
            data: 0,
            data_end: frame.len() as u32,
            data_meta: 0,
            ingress_ifindex: ifindex,
            rx_queue_index: queue,
            egress_ifindex: 0,
        }
    }

    /// The six `__u32` in native byte order, as the kernel reads them.
    fn to_bytes(self) -> [u8; 24] {
        let mut b = [0u8; 24];
        for (i, v) in [
            self.data,
            self.data_end,
            self.data_meta,
            self.ingress_ifindex,
            self.rx_queue_index,
            self.egress_ifindex,
        ]
        .into_iter()
        .enumerate()
        {
            b[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
        }
        b
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn kernel_releases_are_read_as_major_minor() {
        assert!(kernel_has_live_frames("6.18.44-fc-v1300"));
        assert!(kernel_has_live_frames("5.18.0"));
        assert!(!kernel_has_live_frames("5.17.15-arch1"));
        assert!(!kernel_has_live_frames("4.19.0-27-amd64"));
        assert!(!kernel_has_live_frames(""));
    }

    #[test]
    fn the_config_holds_the_prefix_and_its_host_bits() {
        let c = GenConfig::new(
            Flood::Syn,
            "192.0.2.192/26".parse().unwrap(),
            (1024, 65535),
            (22, 22),
        );
        assert_eq!(c.kind, 2);
        assert_eq!(&c.src[..4], &[192, 0, 2, 192]);
        assert_eq!(&c.mask[..4], &[0, 0, 0, 63]);
        assert_eq!(&c.mask[4..], &[0; 12]);
        let c = GenConfig::new(
            Flood::Udp,
            "2001:db8:f::/64".parse().unwrap(),
            (1, 2),
            (3, 4),
        );
        assert_eq!(&c.mask[..8], &[0; 8]);
        assert_eq!(&c.mask[8..], &[0xff; 8]);
    }

    #[test]
    fn the_object_has_the_generator_and_its_maps() {
        let text = String::from_utf8_lossy(GEN_OBJECT);
        for name in [GEN_PROGRAM, "gen_cfg", "gen_counters"] {
            assert!(text.contains(name), "{name} missing from gen.bpf.o");
        }
    }
}
