//! Loading the XDP program, attaching it, writing its maps from the compiled tables.

use std::os::fd::AsRawFd;
use std::time::Duration;

use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Array, HashMap, MapData, MapError, PerCpuArray, XskMap};
use aya::programs::{ProgramError, TestRun, TestRunOptions, Xdp, XdpMode};
use aya::{Ebpf, EbpfError, Pod};
use fastpath::Service;
use fastpath::syncookie::{ExportedSecrets, SynAckParams};
use fastpath::tables::{AccessAction, Cover, L4Proto, Tables, Unconfigured};
use ipnet::IpNet;

use crate::abi::{self, Access, CookieKey, CookieRetired, Cookies, Counter, Dest, Ports, PortsKey};

/// The main program (in `bpf/fastpath.bpf.c`), with the SYN-cookie gate.
pub const PROGRAM: &str = "fastpath_xdp";
/// The same program without the SYN-cookie gate: the fallback when the kernel refuses the gate.
pub const PROGRAM_NO_GATE: &str = "fastpath_xdp_no_gate";
/// The benchmarks' baseline: drop everything.
pub const DROP_ALL: &str = "fastpath_drop_all";
/// Most destinations per family and generation (`FP_MAX_DESTS`).
pub const MAX_DESTS: usize = 65_536;
/// Most port sets per generation (`FP_MAX_PORT_SETS`).
pub const MAX_PORT_SETS: usize = 8192;
/// Most access rules per family and generation (`FP_MAX_ACCESS`; the tries allocate per entry
/// in use).
pub const MAX_ACCESS: usize = 1_048_576;

/// Why the XDP program could not be used.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    /// The object did not load (usually: not root, or no BPF in this kernel).
    #[error("loading the XDP object failed (this needs root or CAP_BPF + CAP_NET_ADMIN): {0}")]
    Load(#[source] EbpfError),
    /// A program could not be loaded or run.
    #[error("{what}: {source}")]
    Program {
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: ProgramError,
    },
    /// A map could not be read or written.
    #[error("map {map}: {source}")]
    Map {
        /// The map.
        map: String,
        /// The error.
        #[source]
        source: MapError,
    },
    /// No such map in the object (an ABI mismatch: rebuild the object).
    #[error("the XDP object has no map {0}: rebuild it with xdp-prog/build.sh")]
    NoMap(String),
    /// Attaching failed in every mode tried.
    #[error("cannot attach XDP to {iface}: {detail}")]
    Attach {
        /// The interface.
        iface: String,
        /// What each mode said.
        detail: String,
    },
    /// More entries than the maps hold.
    #[error("{what}: {n} entries, the XDP maps hold at most {max}")]
    TooMany {
        /// Which table.
        what: &'static str,
        /// How many.
        n: usize,
        /// The limit.
        max: usize,
    },
}

/// How to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeRequest {
    /// In the driver (fails where the driver has no XDP support).
    Native,
    /// In the kernel's generic path (works everywhere, slower).
    Generic,
    /// Native where the driver has it, generic otherwise.
    Auto,
}

/// How the program ended up attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMode {
    /// In the driver.
    Native,
    /// Generic (SKB) mode.
    Generic,
}

impl AttachMode {
    /// `native` or `generic`.
    pub fn as_str(self) -> &'static str {
        match self {
            AttachMode::Native => "native",
            AttachMode::Generic => "generic",
        }
    }
}

/// What [`XdpProgram::install`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Installed {
    /// The generation now live (0 or 1).
    pub generation: u32,
    /// IPv4 destination entries.
    pub dests_v4: usize,
    /// IPv6 destination entries.
    pub dests_v6: usize,
    /// Port sets.
    pub port_sets: usize,
}

/// The loaded XDP program and its maps.
///
/// Attachment goes through a BPF link owned by this value: dropping it, or the process dying
/// for any reason, detaches the program, so nothing keeps dropping traffic after a crash.
#[derive(Debug)]
pub struct XdpProgram {
    ebpf: Ebpf,
    generation: u32,
    /// The program in use: [`PROGRAM`], or [`PROGRAM_NO_GATE`] when the kernel refused the gate.
    main: &'static str,
    /// Why the gate is not in the kernel (the verifier's words), when it is not.
    gate_refused: Option<String>,
    /// Which slot of `fp_cookies` is live.
    cookie_slot: u32,
}

/// What the SYN-cookie gate in the kernel needs: the secrets of the epochs around now and
/// what the SYN-ACK says ([`XdpProgram::set_cookies`]).
#[derive(Debug, Clone, Copy)]
pub struct GateState {
    /// The secrets ([`fastpath::syncookie::SynCookies::export`]).
    pub secrets: ExportedSecrets,
    /// The SYN-ACK's fields ([`fastpath::syncookie::CookieConfig::syn_ack`]).
    pub syn_ack: SynAckParams,
    /// Unix time minus `CLOCK_MONOTONIC` (the program's clock), in nanoseconds.
    pub clock_offset_ns: i64,
    /// Nonzero: the program's clock stands still at this Unix time (tests).
    pub fixed_now_ns: u64,
}

impl GateState {
    /// The state for `secrets` and `syn_ack` with the program's clock following the system's.
    pub fn now(secrets: ExportedSecrets, syn_ack: SynAckParams) -> GateState {
        GateState {
            secrets,
            syn_ack,
            clock_offset_ns: clock_offset_ns(),
            fixed_now_ns: 0,
        }
    }
}

/// `CLOCK_REALTIME - CLOCK_MONOTONIC` now, in nanoseconds (`bpf_ktime_get_ns` reads the
/// monotonic clock).
pub fn clock_offset_ns() -> i64 {
    fn read(clock: libc::clockid_t) -> i64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the timespec it is given; both clocks always exist.
        #[allow(unsafe_code)]
        unsafe {
            libc::clock_gettime(clock, &mut ts);
        }
        ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    }
    let m0 = read(libc::CLOCK_MONOTONIC);
    let r = read(libc::CLOCK_REALTIME);
    let m1 = read(libc::CLOCK_MONOTONIC);
    r - (m0 + (m1 - m0) / 2)
}

fn map_err(map: &str) -> impl FnOnce(MapError) -> XdpError + '_ {
    move |source| XdpError::Map {
        map: map.to_string(),
        source,
    }
}

impl XdpProgram {
    /// Loads the embedded object and both programs into the kernel.
    ///
    /// # Errors
    /// [`XdpError::Load`] without privileges or BPF support; [`XdpError::Program`] when the
    /// verifier refuses a program.
    pub fn load() -> Result<XdpProgram, XdpError> {
        let mut ebpf = Ebpf::load(crate::OBJECT).map_err(XdpError::Load)?;
        let mut gate_refused = None;
        let main = match load_program(&mut ebpf, PROGRAM) {
            Ok(()) => PROGRAM,
            Err(e) => {
                gate_refused = Some(e.to_string());
                load_program(&mut ebpf, PROGRAM_NO_GATE)?;
                PROGRAM_NO_GATE
            }
        };
        load_program(&mut ebpf, DROP_ALL)?;
        Ok(XdpProgram {
            ebpf,
            generation: 0,
            main,
            gate_refused,
            cookie_slot: 0,
        })
    }

    /// Why the kernel refused the SYN-cookie gate (the program without it runs instead, and
    /// userspace answers SYNs), or `None` when the gate is in the kernel.
    pub fn gate_refused(&self) -> Option<&str> {
        self.gate_refused.as_deref()
    }

    /// Writes the SYN-cookie gate's state into the slot the program does not read, then makes
    /// it live with one update (`None`: the gate is userspace's, SYNs and ACKs go there).
    /// Call it every second: the program's secrets cover the epochs around the moment of the
    /// last call, and its clock follows the system's from the offset written.
    ///
    /// # Errors
    /// [`XdpError::Map`].
    pub fn set_cookies(&mut self, state: Option<&GateState>) -> Result<(), XdpError> {
        let mut v = Cookies::default();
        if let Some(g) = state {
            let e = &g.secrets;
            v.enabled = u32::from(self.gate_refused.is_none());
            v.rotate_secs = u32::try_from(e.rotate_secs.max(1)).unwrap_or(u32::MAX);
            v.window = g.syn_ack.window;
            v.wscale = g.syn_ack.wscale;
            v.mss4 = g.syn_ack.mss4;
            v.mss6 = g.syn_ack.mss6;
            v.clock_offset_ns = g.clock_offset_ns;
            v.fixed_now_ns = g.fixed_now_ns;
            for k in &e.keys {
                v.keys[(k.epoch % abi::COOKIE_KEYS as u64) as usize] = CookieKey {
                    epoch: k.epoch,
                    k0: k.key.0,
                    k1: k.key.1,
                    check: u32::from(k.check),
                    pad: 0,
                };
            }
            for (slot, r) in v.retired.iter_mut().zip(&e.retired) {
                *slot = CookieRetired {
                    epoch: r.epoch,
                    k0: r.key.0,
                    k1: r.key.1,
                    until: r.until,
                };
            }
        }
        let next = self.cookie_slot ^ 1;
        {
            let mut m: Array<&mut MapData, Cookies> =
                Array::try_from(self.map_mut("fp_cookies")?).map_err(map_err("fp_cookies"))?;
            m.set(next, v, 0).map_err(map_err("fp_cookies"))?;
        }
        let mut live: Array<&mut MapData, u32> =
            Array::try_from(self.map_mut("fp_cookie_live")?).map_err(map_err("fp_cookie_live"))?;
        live.set(0, next, 0).map_err(map_err("fp_cookie_live"))?;
        self.cookie_slot = next;
        Ok(())
    }

    /// Forgets the flows whose cookie ACK the program validated (tests that replay captures
    /// start from no state, as the pipeline does).
    ///
    /// # Errors
    /// [`XdpError::Map`].
    pub fn clear_flows(&mut self) -> Result<(), XdpError> {
        let mut h: HashMap<&mut MapData, [u8; 40], u64> =
            HashMap::try_from(self.map_mut("fp_flows")?).map_err(map_err("fp_flows"))?;
        let keys: Vec<[u8; 40]> = h
            .keys()
            .collect::<Result<_, _>>()
            .map_err(map_err("fp_flows"))?;
        for k in keys {
            h.remove(&k).map_err(map_err("fp_flows"))?;
        }
        Ok(())
    }

    fn xdp(&mut self, name: &str) -> Result<&mut Xdp, XdpError> {
        xdp_of(&mut self.ebpf, name)
    }

    /// Attaches the main program to `iface`.
    ///
    /// # Errors
    /// [`XdpError::Attach`] with what each mode said.
    pub fn attach(&mut self, iface: &str, mode: ModeRequest) -> Result<AttachMode, XdpError> {
        self.attach_program(self.main, iface, mode)
    }

    /// Attaches the benchmarks' drop-everything program to `iface` instead.
    ///
    /// # Errors
    /// As [`XdpProgram::attach`].
    pub fn attach_drop_all(
        &mut self,
        iface: &str,
        mode: ModeRequest,
    ) -> Result<AttachMode, XdpError> {
        self.attach_program(DROP_ALL, iface, mode)
    }

    fn attach_program(
        &mut self,
        name: &str,
        iface: &str,
        mode: ModeRequest,
    ) -> Result<AttachMode, XdpError> {
        let tries: &[(XdpMode, AttachMode)] = match mode {
            ModeRequest::Native => &[(XdpMode::Driver, AttachMode::Native)],
            ModeRequest::Generic => &[(XdpMode::Skb, AttachMode::Generic)],
            ModeRequest::Auto => &[
                (XdpMode::Driver, AttachMode::Native),
                (XdpMode::Skb, AttachMode::Generic),
            ],
        };
        let mut detail = Vec::new();
        for (m, am) in tries {
            match self.xdp(name)?.attach(iface, *m) {
                Ok(_) => return Ok(*am),
                Err(e) => detail.push(format!("{}: {e}", am.as_str())),
            }
        }
        Err(XdpError::Attach {
            iface: iface.to_string(),
            detail: detail.join("; "),
        })
    }

    fn map_mut(&mut self, name: &str) -> Result<&mut aya::maps::Map, XdpError> {
        self.ebpf
            .map_mut(name)
            .ok_or_else(|| XdpError::NoMap(name.to_string()))
    }

    fn map(&self, name: &str) -> Result<&aya::maps::Map, XdpError> {
        self.ebpf
            .map(name)
            .ok_or_else(|| XdpError::NoMap(name.to_string()))
    }

    fn clear_lpm<K: Pod, V: Pod>(&mut self, name: &str) -> Result<(), XdpError> {
        let mut t: LpmTrie<&mut MapData, K, V> =
            LpmTrie::try_from(self.map_mut(name)?).map_err(map_err(name))?;
        let keys: Vec<Key<K>> = t.keys().collect::<Result<_, _>>().map_err(map_err(name))?;
        for k in keys {
            t.remove(&k).map_err(map_err(name))?;
        }
        Ok(())
    }

    /// Writes `tables` into the inactive generation of the maps, then makes it live with one
    /// update. The kernel sees the whole old configuration or the whole new one: it never drops
    /// a packet both accept.
    ///
    /// # Errors
    /// [`XdpError::Map`] on a map write; [`XdpError::TooMany`] past the maps' sizes.
    pub fn install(&mut self, tables: &Tables) -> Result<Installed, XdpError> {
        let next = self.generation ^ 1;
        let (d4, d6, ps) = (
            format!("fp_dest4_{next}"),
            format!("fp_dest6_{next}"),
            format!("fp_ports_{next}"),
        );
        let (a4, a6) = (format!("fp_access4_{next}"), format!("fp_access6_{next}"));
        let mut access4: Vec<(Key<[u8; 4]>, Access)> = Vec::new();
        let mut access6: Vec<(Key<[u8; 16]>, Access)> = Vec::new();
        for r in &tables.access_rules {
            let a = Access {
                action: match r.action {
                    AccessAction::Allow => abi::ACCESS_ALLOW,
                    AccessAction::Block => abi::ACCESS_BLOCK,
                },
            };
            match r.cidr.trunc() {
                IpNet::V4(n) => {
                    access4.push((Key::new(u32::from(n.prefix_len()), n.network().octets()), a))
                }
                IpNet::V6(n) => {
                    access6.push((Key::new(u32::from(n.prefix_len()), n.network().octets()), a))
                }
            }
        }

        // The entries, computed first: nothing is written if the tables do not fit.
        let mut v4: Vec<(Key<[u8; 4]>, Dest)> = Vec::new();
        let mut v6: Vec<(Key<[u8; 16]>, Dest)> = Vec::new();
        let mut sets: Vec<(PortsKey, Box<Ports>)> = Vec::new();
        let mut cdn_tcp = Box::<Ports>::default();
        let mut cdn_udp = Box::<Ports>::default();
        for p in tables.cdn.tcp.iter() {
            cdn_tcp.set_range(p, p);
        }
        if tables.cdn.https_only {
            // Port 80 is answered with a RST by userspace.
            cdn_tcp.set_range(80, 80);
        }
        for p in tables.cdn.udp.iter() {
            cdn_udp.set_range(p, p);
        }
        sets.push((
            PortsKey {
                id: 0,
                proto: 6,
                pad: [0; 3],
            },
            cdn_tcp,
        ));
        sets.push((
            PortsKey {
                id: 0,
                proto: 17,
                pad: [0; 3],
            },
            cdn_udp,
        ));
        // The CDN's ports inline in every CDN binding's entry (the same sets as above).
        let mut cdn_tcp_ports: Vec<(u16, u16)> = tables.cdn.tcp.iter().map(|p| (p, p)).collect();
        if tables.cdn.https_only {
            cdn_tcp_ports.push((80, 80));
        }
        let cdn_inline = [
            abi::merge_ranges(cdn_tcp_ports),
            abi::merge_ranges(tables.cdn.udp.iter().map(|p| (p, p)).collect()),
        ];
        let mut next_id = 1u32;
        for d in tables.destinations() {
            let mut v = Dest {
                kind: abi::DEST_PREFIX,
                ..Dest::default()
            };
            if let Some(b) = d.binding {
                v.kind = abi::DEST_BINDING;
                v.service = match b.service {
                    Service::Cdn => abi::SVC_CDN,
                    Service::Spectrum => abi::SVC_SPECTRUM,
                };
                if b.unconfigured == Unconfigured::Reset {
                    v.flags |= abi::DEST_RESET;
                }
                if b.service == Service::Cdn {
                    if tables.cdn.https_only {
                        v.flags |= abi::DEST_HTTPS_ONLY;
                    }
                    for (i, r) in cdn_inline.iter().enumerate() {
                        v.set_inline(i, r);
                    }
                }
            }
            v.flags |= match d.tcp_firewall(&tables.apps) {
                Cover::All => abi::DEST_FW_TCP,
                Cover::Some => abi::DEST_FW_TCP_MIXED,
                Cover::None => 0,
            };
            if d.is_edge() {
                v.flags |= abi::DEST_EDGE;
                v.ports_id = next_id;
                for (i, (proto, l4)) in [(6u8, L4Proto::Tcp), (17u8, L4Proto::Udp)]
                    .into_iter()
                    .enumerate()
                {
                    let ranges = abi::merge_ranges(d.ports(l4).map(|r| (r.lo, r.hi)).collect());
                    if v.set_inline(i, &ranges) {
                        continue;
                    }
                    let mut set = Box::<Ports>::default();
                    let mut any = false;
                    for r in d.ports(l4) {
                        set.set_range(r.lo, r.hi);
                        any = true;
                    }
                    if any {
                        sets.push((
                            PortsKey {
                                id: next_id,
                                proto,
                                pad: [0; 3],
                            },
                            set,
                        ));
                    }
                }
                next_id += 1;
            }
            match d.cidr {
                IpNet::V4(n) => {
                    v4.push((Key::new(u32::from(n.prefix_len()), n.network().octets()), v))
                }
                IpNet::V6(n) => {
                    v6.push((Key::new(u32::from(n.prefix_len()), n.network().octets()), v))
                }
            }
        }
        for (what, n, max) in [
            ("IPv4 destinations", v4.len(), MAX_DESTS),
            ("IPv6 destinations", v6.len(), MAX_DESTS),
            ("port sets", sets.len(), MAX_PORT_SETS),
            ("IPv4 access rules", access4.len(), MAX_ACCESS),
            ("IPv6 access rules", access6.len(), MAX_ACCESS),
        ] {
            if n > max {
                return Err(XdpError::TooMany { what, n, max });
            }
        }

        // The inactive generation: emptied, then filled.
        self.clear_lpm::<[u8; 4], Dest>(&d4)?;
        self.clear_lpm::<[u8; 16], Dest>(&d6)?;
        self.clear_lpm::<[u8; 4], Access>(&a4)?;
        self.clear_lpm::<[u8; 16], Access>(&a6)?;
        for (name, rules) in [(&a4, &access4)] {
            let mut t: LpmTrie<&mut MapData, [u8; 4], Access> =
                LpmTrie::try_from(self.map_mut(name)?).map_err(map_err(name))?;
            for (k, v) in rules {
                t.insert(k, *v, 0).map_err(map_err(name))?;
            }
        }
        for (name, rules) in [(&a6, &access6)] {
            let mut t: LpmTrie<&mut MapData, [u8; 16], Access> =
                LpmTrie::try_from(self.map_mut(name)?).map_err(map_err(name))?;
            for (k, v) in rules {
                t.insert(k, *v, 0).map_err(map_err(name))?;
            }
        }
        {
            let mut h: HashMap<&mut MapData, PortsKey, Ports> =
                HashMap::try_from(self.map_mut(&ps)?).map_err(map_err(&ps))?;
            let keys: Vec<PortsKey> = h.keys().collect::<Result<_, _>>().map_err(map_err(&ps))?;
            for k in keys {
                h.remove(&k).map_err(map_err(&ps))?;
            }
            for (k, v) in &sets {
                h.insert(*k, **v, 0).map_err(map_err(&ps))?;
            }
        }
        {
            let mut t: LpmTrie<&mut MapData, [u8; 4], Dest> =
                LpmTrie::try_from(self.map_mut(&d4)?).map_err(map_err(&d4))?;
            for (k, v) in &v4 {
                t.insert(k, *v, 0).map_err(map_err(&d4))?;
            }
        }
        {
            let mut t: LpmTrie<&mut MapData, [u8; 16], Dest> =
                LpmTrie::try_from(self.map_mut(&d6)?).map_err(map_err(&d6))?;
            for (k, v) in &v6 {
                t.insert(k, *v, 0).map_err(map_err(&d6))?;
            }
        }
        // The flip: one update.
        let mut g: Array<&mut MapData, u32> =
            Array::try_from(self.map_mut("fp_gen")?).map_err(map_err("fp_gen"))?;
        g.set(0, next, 0).map_err(map_err("fp_gen"))?;
        self.generation = next;
        Ok(Installed {
            generation: next,
            dests_v4: v4.len(),
            dests_v6: v6.len(),
            port_sets: sets.len(),
        })
    }

    /// Hands queue `queue`'s redirected frames to the AF_XDP socket `fd`.
    ///
    /// # Errors
    /// [`XdpError::Map`].
    pub fn set_socket(&mut self, queue: u32, fd: impl AsRawFd) -> Result<(), XdpError> {
        let mut m: XskMap<&mut MapData> =
            XskMap::try_from(self.map_mut("fp_xsks")?).map_err(map_err("fp_xsks"))?;
        m.set(queue, fd, 0).map_err(map_err("fp_xsks"))
    }

    /// The counters, summed over CPUs, indexed by slot (reasons first, see [`abi`]).
    ///
    /// # Errors
    /// [`XdpError::Map`].
    pub fn counters(&self) -> Result<Vec<Counter>, XdpError> {
        let a: PerCpuArray<&MapData, Counter> =
            PerCpuArray::try_from(self.map("fp_counters")?).map_err(map_err("fp_counters"))?;
        (0..abi::COUNTERS)
            .map(|i| {
                let per_cpu = a.get(&i, 0).map_err(map_err("fp_counters"))?;
                Ok(per_cpu.iter().fold(Counter::default(), |acc, c| Counter {
                    packets: acc.packets + c.packets,
                    bytes: acc.bytes + c.bytes,
                }))
            })
            .collect()
    }

    /// Runs `frame` through the main program once (`BPF_PROG_TEST_RUN`) and returns its action
    /// (`XDP_DROP` 1, `XDP_PASS` 2, ...). A redirect to a queue without a socket comes back
    /// as `XDP_DROP` and is counted as `no_socket` (the `CTR_NO_SOCKET` slot).
    ///
    /// # Errors
    /// [`XdpError::Program`].
    pub fn test_run(&mut self, frame: &[u8]) -> Result<u32, XdpError> {
        Ok(self.test_run_repeat(frame, 1)?.0)
    }

    /// Runs `frame` `repeat` times; returns the action and the mean time per run.
    ///
    /// # Errors
    /// [`XdpError::Program`].
    pub fn test_run_repeat(
        &mut self,
        frame: &[u8],
        repeat: u32,
    ) -> Result<(u32, Duration), XdpError> {
        self.test_run_program(self.main, frame, repeat)
    }

    /// Runs `frame` `repeat` times through the drop-everything program (the baseline of the
    /// benchmarks); returns the action and the mean time per run.
    ///
    /// # Errors
    /// [`XdpError::Program`].
    pub fn test_run_drop_all_repeat(
        &mut self,
        frame: &[u8],
        repeat: u32,
    ) -> Result<(u32, Duration), XdpError> {
        self.test_run_program(DROP_ALL, frame, repeat)
    }

    /// Runs `frame` once and returns the action and the frame as the program left it (a
    /// stripped VLAN tag, for instance).
    ///
    /// # Errors
    /// [`XdpError::Program`].
    pub fn test_run_output(&mut self, frame: &[u8]) -> Result<(u32, Vec<u8>), XdpError> {
        let mut out = vec![0u8; frame.len() + 256];
        let p = self.xdp(self.main)?;
        let opts = TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            repeat: 1,
            ..TestRunOptions::default()
        };
        let r = p.test_run(opts).map_err(|source| XdpError::Program {
            what: "BPF_PROG_TEST_RUN",
            source,
        })?;
        out.truncate(r.data_size_out as usize);
        Ok((r.return_value, out))
    }

    fn test_run_program(
        &mut self,
        name: &str,
        frame: &[u8],
        repeat: u32,
    ) -> Result<(u32, Duration), XdpError> {
        let mut out = vec![0u8; frame.len() + 256];
        let p = self.xdp(name)?;
        let opts = TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            repeat,
            ..TestRunOptions::default()
        };
        let r = p.test_run(opts).map_err(|source| XdpError::Program {
            what: "BPF_PROG_TEST_RUN",
            source,
        })?;
        Ok((r.return_value, r.duration))
    }
}

fn xdp_of<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Xdp, XdpError> {
    ebpf.program_mut(name)
        .ok_or(XdpError::NoMap(name.to_string()))?
        .try_into()
        .map_err(|source| XdpError::Program {
            what: "not an XDP program",
            source,
        })
}

/// Loads one program of the object into the kernel (the verifier runs here).
fn load_program(ebpf: &mut Ebpf, name: &str) -> Result<(), XdpError> {
    xdp_of(ebpf, name)?
        .load()
        .map_err(|source| XdpError::Program {
            what: "loading the XDP program (verifier)",
            source,
        })
}
