//! SYN cookies: stateless answers to SYNs, validated when the client's ACK comes back.
//!
//! A cookie is the sequence number of our SYN-ACK. Its 32 bits are:
//!
//! ```text
//!  31                                   6   5   4  3  2   0
//! +--------------------------------------+---+-----+------+
//! |  MAC: top 26 bits of SipHash-1-3     | e |  t  | mss  |
//! +--------------------------------------+---+-----+------+
//!   e   = parity of the secret epoch (now / rotate_secs) the cookie was minted in
//!   t   = low 2 bits of the time counter (now / 64 s)
//!   mss = index into the MSS table of the client's family (the client's MSS, rounded down)
//! ```
//!
//! The MAC covers the 4-tuple, the client's ISN, the full time counter and the MSS index, under
//! the secret of epoch `e`. Secrets derive from a 32-byte seed and the epoch number
//! ([`SynCookies::new`]), so every node of a fleet that shares the seed validates the cookies of
//! every other node (anycast / ECMP), and a node's own restart does not invalidate cookies.
//!
//! Validation takes the epoch of the cookie's parity among {current, previous} (so cookies of
//! the previous secret still validate, and older ones never do) and the most recent time
//! counter with the cookie's low bits that is not in the future (ages 0..=3 counters). Hence:
//! * a cookie younger than `min(rotate_secs, 192 s)` always validates (`rotate_secs >= 60` is
//!   enforced by [`CookieConfig::validate`], so younger than 60 s always validates);
//! * a cookie older than 256 s never validates (its time counter is 4 or more behind, and the
//!   MAC covers the full counter), so certainly not one older than 5 minutes.
//!
//! A random ACK passes with probability 2^-26 per attempt.
//!
//! # Rotation on demand
//!
//! Besides the rotation every `rotate_secs`, an operator may rotate at once
//! ([`SynCookies::rotated`], published to every queue by [`CookieSecrets::rotate`]): from that
//! moment cookies are minted under the secret the new seed gives the current epoch. Epoch
//! boundaries never move: they are a function of the clock alone (`now / rotate_secs`), so a
//! node that rotated to a seed and a node that loads the same seed from its configuration (or
//! restarts with it) derive the same secret for every epoch from the rotation on, and validate
//! each other's cookies. The secrets in use until the rotation are *retired*, each kept until
//! the moment its cookies would have expired without the rotation (the end of the epoch after
//! its own) and tried, for a cookie of its epoch, when the current secret refuses it. So a
//! rotation never invalidates a cookie earlier than it would have expired anyway, and a cookie
//! younger than 60 s still always validates. At most [`RETIRED_SECRETS`] retired secrets are
//! kept (each rotation retires two); more rotations than that within two periods retire the
//! oldest early.
//!
//! # Fleet seeds
//!
//! [`SynCookies::fleet`] derives the secret of every epoch from a fleet seed with HKDF-SHA256
//! (RFC 5869: extract with a fixed salt, expand with the epoch number), and the flow-hash key
//! the same way, so every node given the seed rotates at the same moment with no coordination
//! and computes the same worker index for a flow.
//!
//! A new fleet seed is a *generation*: the seed, the one it replaced and the first epoch it
//! keys ([`SynCookies::fleet_from`]). Epochs before that one keep the replaced seed's secrets,
//! so the secret of every epoch is a function of the configuration and the epoch number alone:
//! a node that ran through the change ([`CookieSecrets::reseed`]), one that learned of it late
//! and one started afresh from the new configuration, at any moment, mint identical cookies
//! and validate each other's, including the previous epoch's across the boundary. The
//! flow-hash key is the replaced seed's, the one every node that ran before the change keeps.
//!
//! Like Linux (`cookie_init_timestamp`), the client's window scale, SACK-permitted and ECN
//! wishes are stored in the low 6 bits of our TSval when the client sent timestamps, and come
//! back in the TSecr of its ACK. Without timestamps there is nowhere to keep them, so the
//! SYN-ACK offers neither window scaling nor SACK (Linux does the same under SYN cookies).

mod config;

use core::hash::Hasher;
use core::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;

use siphasher::sip::SipHasher13;
use siphasher::sip128::{Hasher128, SipHasher13 as SipHasher13_128};

pub use config::{CookieConfig, CookieConfigError, SynAckParams};

/// The largest window-scale shift (RFC 7323).
pub const MAX_WSCALE: u8 = crate::wire::tcpopt::MAX_WSCALE;

/// Seconds per tick of the cookie time counter.
pub const COUNTER_SECS: u64 = 64;
/// A cookie whose counter is this many ticks behind or more never validates.
pub const MAX_AGE_TICKS: u64 = 4;

/// MSS values a cookie can encode for IPv4, ascending (RFC 879 default 536 first).
pub const MSS_TABLE_V4: [u16; 8] = [536, 1300, 1360, 1400, 1440, 1452, 1460, 8960];
/// MSS values a cookie can encode for IPv6, ascending (RFC 8200 minimum 1280 - 60 first).
pub const MSS_TABLE_V6: [u16; 8] = [1220, 1280, 1340, 1380, 1420, 1432, 1440, 8940];

const TS_BITS: u32 = 6;
const TS_MASK: u32 = (1 << TS_BITS) - 1;
const TS_WSCALE_NONE: u32 = 0xf;
const TS_SACK: u32 = 1 << 4;
const TS_ECN: u32 = 1 << 5;

/// Why a cookie ACK was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    /// The MAC does not match: a forged, mistyped, too old or other-tuple cookie.
    #[error("cookie does not validate")]
    Invalid,
}

/// The connection a cookie is bound to, from the client's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieTuple {
    /// Client address.
    pub src: IpAddr,
    /// Edge address.
    pub dst: IpAddr,
    /// Client port.
    pub sport: u16,
    /// Edge port.
    pub dport: u16,
}

/// What a validated cookie gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// The client's MSS as encoded (a table value).
    pub mss: u16,
}

/// The client's wishes carried in the low bits of our TSval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TsOptions {
    /// The client's window-scale shift.
    pub wscale: Option<u8>,
    /// SACK permitted.
    pub sack_perm: bool,
    /// ECN requested (SYN with ECE and CWR).
    pub ecn: bool,
}

/// Picks the MSS-table index for a client MSS (the largest entry not above it; index 0 when the
/// client sent none or a smaller one).
pub fn mss_index(v6: bool, client_mss: Option<u16>) -> u8 {
    let table = if v6 { &MSS_TABLE_V6 } else { &MSS_TABLE_V4 };
    let m = client_mss.unwrap_or(0);
    table.iter().rposition(|&t| t <= m).unwrap_or(0) as u8
}

/// Encodes the client's wishes into a TSval taken from our clock `ts_now` (never above it).
pub fn encode_tsval(ts_now: u32, o: TsOptions) -> u32 {
    let mut bits = o.wscale.map_or(TS_WSCALE_NONE, u32::from);
    if o.sack_perm {
        bits |= TS_SACK;
    }
    if o.ecn {
        bits |= TS_ECN;
    }
    let ts = (ts_now & !TS_MASK) | bits;
    if ts > ts_now {
        ts.wrapping_sub(TS_MASK + 1)
    } else {
        ts
    }
}

/// Decodes the wishes from the TSecr of the client's ACK. The 4-bit window-scale field holds
/// 0..=14 or 15 for "none", so every value decodes. (These bits are not covered by the MAC; a
/// client can only lie about its own options, as with Linux.)
pub fn decode_tsecr(tsecr: u32) -> TsOptions {
    let ws = tsecr & TS_WSCALE_NONE;
    TsOptions {
        wscale: (ws != TS_WSCALE_NONE).then_some(ws as u8),
        sack_perm: tsecr & TS_SACK != 0,
        ecn: tsecr & TS_ECN != 0,
    }
}

/// How many secrets retired by rotations on demand a [`SynCookies`] keeps.
pub const RETIRED_SECRETS: usize = 6;

/// A secret retired by a rotation on demand: it validates cookies of `epoch` until `until`.
#[derive(Clone, Copy)]
struct Retired {
    epoch: u64,
    key: (u64, u64),
    /// Unix second from which it no longer validates; 0: an empty slot.
    until: u64,
}

const NO_RETIRED: Retired = Retired {
    epoch: u64::MAX,
    key: (0, 0),
    until: 0,
};

/// The secret of one epoch as another implementation of the gate needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochKey {
    /// The epoch.
    pub epoch: u64,
    /// The SipHash-1-3 key of [`SynCookies::mint`] and [`SynCookies::check`] in that epoch.
    pub key: (u64, u64),
    /// Whether [`SynCookies::check`] tries this key for cookies of the epoch (false for an
    /// epoch before a rotation on demand: its cookies validate only with a retired secret).
    pub check: bool,
}

/// A secret retired by a rotation on demand, as another implementation of the gate needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetiredKey {
    /// The epoch whose cookies it validates.
    pub epoch: u64,
    /// The SipHash-1-3 key.
    pub key: (u64, u64),
    /// Unix second from which it no longer validates; 0: an empty slot.
    pub until: u64,
}

/// Everything another implementation of the gate (the XDP program) needs to mint and check
/// exactly the cookies [`SynCookies`] mints and checks during the epochs around a moment: the
/// secrets themselves, never the seed they derive from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportedSecrets {
    /// Seconds per epoch.
    pub rotate_secs: u64,
    /// The secrets of the epochs `e - 1 ..= e + 2` around the moment's epoch `e`, in order.
    pub keys: [EpochKey; 4],
    /// The retired secrets.
    pub retired: [RetiredKey; RETIRED_SECRETS],
}

/// The SYN-cookie state of one queue: the seed and the secrets of the current and previous
/// epochs, refreshed once per batch. Holds no heap memory, so copying it never allocates.
#[derive(Clone)]
pub struct SynCookies {
    seed: (u64, u64),
    rotate_secs: u64,
    /// Key of [`SynCookies::derived_u64`]: the first seed's (of a fleet seed generation, the
    /// replaced seed's), kept across rotations and new generations.
    hash_seed: (u64, u64),
    /// The first epoch whose secret derives from `seed` (or `fleet_prk`): the epoch of the last
    /// rotation on demand, or the first epoch of a fleet seed generation; 0 without either.
    /// Earlier epochs' secrets expand from `fleet_previous_prk`, else are in `retired`.
    since: u64,
    /// Secrets of earlier seeds that still validate.
    retired: [Retired; RETIRED_SECRETS],
    /// With a fleet seed: its HKDF pseudo-random key, from which every epoch's secret expands
    /// (`seed` is then unused).
    fleet_prk: Option<[u8; 32]>,
    /// With a fleet seed generation: the replaced seed's PRK, which keys the epochs before
    /// `since`.
    fleet_previous_prk: Option<[u8; 32]>,
    /// (epoch, key) by epoch parity.
    keys: [(u64, (u64, u64)); 2],
}

impl core::fmt::Debug for SynCookies {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print secrets.
        f.debug_struct("SynCookies")
            .field("rotate_secs", &self.rotate_secs)
            .finish_non_exhaustive()
    }
}

fn derive(seed: (u64, u64), epoch: u64) -> (u64, u64) {
    let mut h = SipHasher13_128::new_with_keys(seed.0, seed.1);
    h.write(b"fastpath syn cookie secret v1");
    h.write_u64(epoch);
    let k = h.finish128();
    (k.h1, k.h2)
}

/// HKDF info of the cookie secrets (followed by the epoch number).
const SECRET_INFO: &[u8] = b"fastpath syn cookie secret v1";
/// HKDF info of a fleet seed's flow-hash key.
const FLOW_HASH_INFO: &[u8] = b"fastpath flow hash v1";

/// HKDF-Extract of a fleet seed (salt fixed, so the seed alone decides).
fn fleet_prk(seed: &[u8; 32]) -> [u8; 32] {
    let (prk, _) = hkdf::Hkdf::<sha2::Sha256>::extract(Some(b"fastpath fleet seed v1"), seed);
    prk.into()
}

/// HKDF-Expand of a fleet PRK to a SipHash key, for `label` and (for secrets) an epoch.
fn fleet_expand(prk: &[u8; 32], label: &[u8], epoch: Option<u64>) -> (u64, u64) {
    let hk = hkdf::Hkdf::<sha2::Sha256>::from_prk(prk).expect("a 32-byte PRK is long enough");
    let mut okm = [0u8; 16];
    let e = epoch.map(u64::to_be_bytes);
    let info: [&[u8]; 2] = [label, e.as_ref().map_or(&[][..], |b| &b[..])];
    hk.expand_multi_info(&info, &mut okm)
        .expect("16 bytes is a valid HKDF output length");
    let (a, b) = okm.split_at(8);
    (
        u64::from_le_bytes(a.try_into().expect("8 bytes")),
        u64::from_le_bytes(b.try_into().expect("8 bytes")),
    )
}

/// Compresses a 32-byte seed (any shared secret) into a SipHash key.
fn compress(seed: &[u8; 32]) -> (u64, u64) {
    let mut h = SipHasher13_128::new_with_keys(0x6661_7374_7061_7468, 0x7365_6564_2d6b_6579);
    h.write(seed);
    let k = h.finish128();
    (k.h1, k.h2)
}

impl SynCookies {
    /// Cookie state for `seed` with secrets rotating every `rotate_secs` (>= 1) seconds.
    pub fn new(seed: [u8; 32], rotate_secs: u32) -> SynCookies {
        let seed = compress(&seed);
        let mut c = SynCookies {
            seed,
            hash_seed: seed,
            rotate_secs: u64::from(rotate_secs.max(1)),
            since: 0,
            retired: [NO_RETIRED; RETIRED_SECRETS],
            fleet_prk: None,
            fleet_previous_prk: None,
            keys: [(u64::MAX, (0, 0)); 2],
        };
        c.refresh(0);
        c
    }

    /// Cookie state for a fleet seed: every epoch's secret, and the flow-hash key, expand from
    /// `seed` with HKDF-SHA256, so nodes sharing it agree on both with no coordination.
    pub fn fleet(seed: [u8; 32], rotate_secs: u32) -> SynCookies {
        let prk = fleet_prk(&seed);
        let mut c = SynCookies::new(seed, rotate_secs);
        c.fleet_prk = Some(prk);
        c.hash_seed = fleet_expand(&prk, FLOW_HASH_INFO, None);
        c.keys = [(u64::MAX, (0, 0)); 2];
        c.refresh(0);
        c
    }

    /// Cookie state for a fleet seed generation: the secrets of epochs `from` on expand from
    /// `seed`, those of earlier epochs from `previous` (the seed it replaced), each exactly as
    /// [`SynCookies::fleet`] of that seed derives them. The state depends on its arguments
    /// alone, never on when it is built, so every node given the same generation (running
    /// through the change, or started at any moment after it) mints the same cookies in every
    /// epoch, and a cookie of epoch `from - 1` validates during epoch `from` everywhere.
    ///
    /// The flow-hash key is `previous`'s: a node that ran before the change keeps the hasher
    /// it started with (its flows keep their workers), and one started afresh must compute
    /// the same worker index for a flow. (After a second generation, a node started before
    /// the first keeps the first seed's key while a fresh one takes the second's: a known gap,
    /// closed by restarting the older nodes.)
    pub fn fleet_from(
        previous: [u8; 32],
        seed: [u8; 32],
        from: u64,
        rotate_secs: u32,
    ) -> SynCookies {
        let previous_prk = fleet_prk(&previous);
        let mut c = SynCookies::fleet(seed, rotate_secs);
        c.hash_seed = fleet_expand(&previous_prk, FLOW_HASH_INFO, None);
        c.fleet_previous_prk = Some(previous_prk);
        c.since = from;
        c.keys = [(u64::MAX, (0, 0)); 2];
        c.refresh(0);
        c
    }

    /// The state `cfg` asks for, keyed by `seed` (the configured one, or a random one when it
    /// has none): a fleet seed's ([`SynCookies::fleet`], or [`SynCookies::fleet_from`] with the
    /// seed it replaced) or a node's ([`SynCookies::new`]).
    pub fn for_config(cfg: &CookieConfig, seed: [u8; 32]) -> SynCookies {
        match (cfg.fleet, cfg.previous_seed) {
            (true, Some(previous)) => {
                SynCookies::fleet_from(previous, seed, cfg.seed_from, cfg.rotate_secs)
            }
            (true, None) => SynCookies::fleet(seed, cfg.rotate_secs),
            (false, _) => SynCookies::new(seed, cfg.rotate_secs),
        }
    }

    /// Whether the secrets come from a fleet seed.
    pub fn is_fleet(&self) -> bool {
        self.fleet_prk.is_some()
    }

    /// The state after a rotation on demand at `now_secs` to `seed`: from now on cookies are
    /// minted under the secret `seed` gives the current epoch (the epoch boundaries do not
    /// move). The secrets of the current and the previous epoch in use until now are retired:
    /// each keeps validating its cookies until they would have expired without the rotation.
    /// The flow hash ([`SynCookies::derived_u64`]) keeps the original seed's key, so flows
    /// keep their workers.
    pub fn rotated(&self, seed: [u8; 32], now_secs: u64) -> SynCookies {
        let e = self.epoch(now_secs);
        let mut next = self.retiring(now_secs, e);
        next.seed = compress(&seed);
        next.fleet_prk = None;
        next.fleet_previous_prk = None;
        next.since = e;
        next.keys = [(u64::MAX, (0, 0)); 2];
        next.refresh(now_secs);
        next
    }

    /// A copy whose retired secrets are those still alive at `now_secs` plus the secrets of
    /// epochs `e` and `e - 1` in use now.
    fn retiring(&self, now_secs: u64, e: u64) -> SynCookies {
        let mut retired = self.retired;
        for r in &mut retired {
            if r.until <= now_secs {
                *r = NO_RETIRED;
            }
        }
        for epoch in [e, e.wrapping_sub(1)] {
            // Epochs before `since` have no secret of the current seed: theirs are retired
            // already (or expand from the previous fleet seed).
            if epoch == u64::MAX || (epoch < self.since && self.fleet_previous_prk.is_none()) {
                continue;
            }
            let until = (epoch + 2).saturating_mul(self.rotate_secs);
            let slot = retired
                .iter_mut()
                .min_by_key(|r| r.until)
                .expect("RETIRED_SECRETS > 0");
            *slot = Retired {
                epoch,
                key: self.key(epoch),
                until,
            };
        }
        let mut next = self.clone();
        next.retired = retired;
        next
    }

    /// The secret epoch at `now_secs`: a function of the clock alone.
    #[inline]
    fn epoch(&self, now_secs: u64) -> u64 {
        now_secs / self.rotate_secs
    }

    /// The secrets of the epochs around `now_secs` (the previous, the current and the next
    /// two, so a copy refreshed every second never lags an epoch boundary) and the retired
    /// ones, for an implementation of the gate outside this process: with them it mints and
    /// checks exactly what [`SynCookies::mint`] and [`SynCookies::check`] do.
    pub fn export(&self, now_secs: u64) -> ExportedSecrets {
        let e = self.epoch(now_secs);
        let keys = [0u64, 1, 2, 3].map(|i| {
            let epoch = e.wrapping_sub(1).wrapping_add(i);
            EpochKey {
                epoch,
                key: self.derive_key(epoch),
                check: epoch >= self.since || self.fleet_previous_prk.is_some(),
            }
        });
        ExportedSecrets {
            rotate_secs: self.rotate_secs,
            keys,
            retired: self.retired.map(|r| RetiredKey {
                epoch: r.epoch,
                key: r.key,
                until: r.until,
            }),
        }
    }

    /// A random seed from the operating system.
    ///
    /// # Errors
    /// The OS error when no randomness is available.
    pub fn random_seed() -> Result<[u8; 32], getrandom::Error> {
        let mut s = [0u8; 32];
        getrandom::fill(&mut s)?;
        Ok(s)
    }

    /// A 64-bit value derived from the seed for other keyed hashes (the flow hasher), so that a
    /// run with a fixed seed is reproducible and one with a random seed is not predictable.
    pub fn derived_u64(&self, label: &[u8]) -> u64 {
        let mut h = SipHasher13::new_with_keys(self.hash_seed.0, self.hash_seed.1);
        h.write(label);
        h.finish()
    }

    /// Makes sure the secrets of the epoch of `now_secs` and the one before are at hand. Cheap
    /// when the epoch did not change; call once per batch.
    #[inline]
    pub fn refresh(&mut self, now_secs: u64) {
        let e = self.epoch(now_secs);
        for epoch in [e, e.wrapping_sub(1)] {
            let slot = (epoch & 1) as usize;
            if self.keys[slot].0 != epoch {
                self.keys[slot] = (epoch, self.derive_key(epoch));
            }
        }
    }

    /// The secret of `epoch`: derived from the seed from `since` on; before, the previous
    /// fleet seed's, else the newest retired one of that epoch (minting there happens only when
    /// a caller's clock runs behind the rotation).
    fn derive_key(&self, epoch: u64) -> (u64, u64) {
        if epoch < self.since
            && let Some(prk) = &self.fleet_previous_prk
        {
            return fleet_expand(prk, SECRET_INFO, Some(epoch));
        }
        if epoch < self.since
            && let Some(r) = self
                .retired
                .iter()
                .filter(|r| r.until != 0 && r.epoch == epoch)
                .max_by_key(|r| r.until)
        {
            return r.key;
        }
        match &self.fleet_prk {
            Some(prk) => fleet_expand(prk, SECRET_INFO, Some(epoch)),
            None => derive(self.seed, epoch),
        }
    }

    fn key(&self, epoch: u64) -> (u64, u64) {
        let (e, k) = self.keys[(epoch & 1) as usize];
        if e == epoch {
            k
        } else {
            self.derive_key(epoch)
        }
    }

    /// SipHash-1-3 under `key` over the bytes the cookie has always covered: for IPv4 the
    /// two addresses as little-endian `u32`s (24 bytes in all), otherwise the two addresses
    /// as `u128`s in native byte order, IPv4 ones IPv4-mapped (48 bytes), then the ports and
    /// ISN word and the counter word, little-endian. This is what `siphasher::SipHasher13`
    /// with `write_u32`/`write_u128`/`write_u64` computes (the test `mac_is_siphasher13`
    /// compares the two on random tuples); written out as whole 64-bit words it needs no
    /// tail buffering, which made the generic hasher cost about 200 instructions a cookie.
    #[inline]
    fn mac(key: (u64, u64), t: &CookieTuple, isn: u32, counter: u64, mss_idx: u8) -> u32 {
        let ports = u64::from(t.sport) | (u64::from(t.dport) << 16) | (u64::from(isn) << 32);
        let count = counter << 8 | u64::from(mss_idx);
        let h = match (t.src, t.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => sip13(
                key,
                &[
                    u64::from(s.to_bits().to_le()) | (u64::from(d.to_bits().to_le()) << 32),
                    ports,
                    count,
                ],
            ),
            (s, d) => {
                let (s, d) = (to_u128(s).to_ne_bytes(), to_u128(d).to_ne_bytes());
                let w = |b: &[u8; 16], i: usize| {
                    u64::from_le_bytes([
                        b[i],
                        b[i + 1],
                        b[i + 2],
                        b[i + 3],
                        b[i + 4],
                        b[i + 5],
                        b[i + 6],
                        b[i + 7],
                    ])
                };
                sip13(key, &[w(&s, 0), w(&s, 8), w(&d, 0), w(&d, 8), ports, count])
            }
        };
        (h >> 38) as u32
    }

    /// Mints the cookie for a SYN with initial sequence number `client_isn` received at
    /// `now_secs`, encoding MSS-table index `mss_idx` (0..=7).
    #[inline]
    pub fn mint(&self, now_secs: u64, t: &CookieTuple, client_isn: u32, mss_idx: u8) -> u32 {
        let epoch = self.epoch(now_secs);
        let counter = now_secs / COUNTER_SECS;
        let idx = mss_idx & 7;
        let mac = Self::mac(self.key(epoch), t, client_isn, counter, idx);
        (mac << 6) | (((epoch & 1) as u32) << 5) | (((counter & 3) as u32) << 3) | u32::from(idx)
    }

    /// Checks `cookie` (the client's ACK number minus one) for the client's ISN (its sequence
    /// number minus one) at `now_secs`.
    ///
    /// # Errors
    /// [`CookieError::Invalid`] for a cookie that was not minted for this tuple and ISN by a
    /// node sharing our seed within the validity window.
    #[inline]
    pub fn check(
        &self,
        now_secs: u64,
        t: &CookieTuple,
        client_isn: u32,
        cookie: u32,
        v6: bool,
    ) -> Result<Decoded, CookieError> {
        let e_now = self.epoch(now_secs);
        let parity = u64::from((cookie >> 5) & 1);
        let epoch = if e_now & 1 == parity {
            e_now
        } else {
            e_now.wrapping_sub(1)
        };
        let c_now = now_secs / COUNTER_SECS;
        let age = c_now.wrapping_sub(u64::from((cookie >> 3) & 3)) & 3;
        let counter = c_now.wrapping_sub(age);
        let idx = (cookie & 7) as u8;
        let mac = cookie >> 6;
        let derived = epoch >= self.since || self.fleet_previous_prk.is_some();
        let current = derived && Self::mac(self.key(epoch), t, client_isn, counter, idx) == mac;
        if !current {
            // After a rotation on demand, the secrets it retired, for cookies of their epoch
            // until they would have expired.
            let retired = self.retired.iter().any(|r| {
                r.epoch == epoch
                    && now_secs < r.until
                    && Self::mac(r.key, t, client_isn, counter, idx) == mac
            });
            if !retired {
                return Err(CookieError::Invalid);
            }
        }
        let table = if v6 { &MSS_TABLE_V6 } else { &MSS_TABLE_V4 };
        Ok(Decoded {
            mss: table[usize::from(idx)],
        })
    }
}

/// The cookie state every queue of a node follows, replaced whole by a rotation on demand.
/// A queue compares the generation once per batch (one relaxed load) and copies the new
/// state when it changed ([`crate::pipeline::Pipeline::follow_secrets`]); the copy holds no
/// heap memory, so following a rotation does not allocate on the hot path.
pub struct CookieSecrets {
    state: ArcSwap<SynCookies>,
    generation: AtomicU64,
}

impl core::fmt::Debug for CookieSecrets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CookieSecrets")
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl CookieSecrets {
    /// Publishes `cookies` as generation 0.
    pub fn new(cookies: SynCookies) -> Arc<CookieSecrets> {
        Arc::new(CookieSecrets {
            state: ArcSwap::from_pointee(cookies),
            generation: AtomicU64::new(0),
        })
    }

    /// The number of rotations published so far.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A copy of the current state.
    pub fn current(&self) -> SynCookies {
        SynCookies::clone(&self.state.load())
    }

    /// Publishes `next`, the state of a new fleet seed generation built from the configuration
    /// ([`SynCookies::fleet_from`]), so that this node holds exactly what a node started from
    /// that configuration holds; queues take it at their next batch. The flow-hash key in use
    /// stays: the queues' flow hashers were keyed at start and never change.
    pub fn reseed(&self, next: &SynCookies) {
        self.state.rcu(|c| {
            let mut n = next.clone();
            n.hash_seed = c.hash_seed;
            n
        });
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Rotates at `now_secs` to `seed` (see [`SynCookies::rotated`]) and publishes the result;
    /// queues take it at their next batch.
    pub fn rotate(&self, seed: [u8; 32], now_secs: u64) {
        self.state.rcu(|c| c.rotated(seed, now_secs));
        self.generation.fetch_add(1, Ordering::Release);
    }
}

/// SipHash-1-3 (one compression round per word, three finalization rounds) of a message of
/// whole little-endian 64-bit words: the reference algorithm with an empty tail, so the final
/// block is the length in bytes in its top byte.
#[inline(always)]
fn sip13<const N: usize>(key: (u64, u64), words: &[u64; N]) -> u64 {
    #[inline(always)]
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13);
        v[1] ^= v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16);
        v[3] ^= v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21);
        v[3] ^= v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17);
        v[1] ^= v[2];
        v[2] = v[2].rotate_left(32);
    }
    let mut v = [
        key.0 ^ 0x736f_6d65_7073_6575,
        key.1 ^ 0x646f_7261_6e64_6f6d,
        key.0 ^ 0x6c79_6765_6e65_7261,
        key.1 ^ 0x7465_6462_7974_6573,
    ];
    for &m in words {
        v[3] ^= m;
        round(&mut v);
        v[0] ^= m;
    }
    let b = ((N as u64 * 8) & 0xff) << 56;
    v[3] ^= b;
    round(&mut v);
    v[0] ^= b;
    v[2] ^= 0xff;
    round(&mut v);
    round(&mut v);
    round(&mut v);
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

fn to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => v.to_ipv6_mapped().to_bits(),
        IpAddr::V6(v) => v.to_bits(),
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;

    fn tuple() -> CookieTuple {
        CookieTuple {
            src: "198.51.100.20".parse().unwrap(),
            dst: "203.0.113.10".parse().unwrap(),
            sport: 40000,
            dport: 22,
        }
    }

    const NOW: u64 = 1_700_000_000;

    /// The cookie MAC as it was first written, with the generic `siphasher` hasher: the
    /// reference the hand-written SipHash-1-3 must equal bit for bit (the XDP program computes
    /// the same bytes).
    fn mac_siphasher(key: (u64, u64), t: &CookieTuple, isn: u32, counter: u64, idx: u8) -> u32 {
        let mut h = SipHasher13::new_with_keys(key.0, key.1);
        match (t.src, t.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                h.write_u32(s.to_bits());
                h.write_u32(d.to_bits());
            }
            (s, d) => {
                h.write_u128(to_u128(s));
                h.write_u128(to_u128(d));
            }
        }
        h.write_u64(u64::from(t.sport) | (u64::from(t.dport) << 16) | (u64::from(isn) << 32));
        h.write_u64(counter << 8 | u64::from(idx));
        (h.finish() >> 38) as u32
    }

    proptest! {
        #[test]
        fn mac_is_siphasher13(
            k0 in any::<u64>(), k1 in any::<u64>(),
            s in any::<u128>(), d in any::<u128>(), fam in 0u8..4,
            sport in any::<u16>(), dport in any::<u16>(), isn in any::<u32>(),
            counter in any::<u64>(), idx in 0u8..8,
        ) {
            let a = |x: u128, v6: bool| if v6 {
                IpAddr::V6(core::net::Ipv6Addr::from(x))
            } else {
                IpAddr::V4(core::net::Ipv4Addr::from(x as u32))
            };
            let t = CookieTuple { src: a(s, fam & 1 != 0), dst: a(d, fam & 2 != 0), sport, dport };
            let counter = counter >> 8;
            prop_assert_eq!(
                SynCookies::mac((k0, k1), &t, isn, counter, idx),
                mac_siphasher((k0, k1), &t, isn, counter, idx)
            );
        }
    }

    #[test]
    fn round_trip() {
        let c = SynCookies::new([7; 32], 60);
        let k = c.mint(NOW, &tuple(), 1000, 6);
        assert_eq!(
            c.check(NOW, &tuple(), 1000, k, false),
            Ok(Decoded { mss: 1460 })
        );
    }

    #[test]
    fn younger_than_60s_always_validates_older_than_300s_never() {
        for start in (NOW..NOW + 600).step_by(7) {
            let mut c = SynCookies::new([1; 32], 60);
            c.refresh(start);
            let k = c.mint(start, &tuple(), 42, 3);
            for age in 0..60 {
                c.refresh(start + age);
                assert!(
                    c.check(start + age, &tuple(), 42, k, false).is_ok(),
                    "start {start} age {age}"
                );
            }
            for age in 300..700 {
                c.refresh(start + age);
                assert!(
                    c.check(start + age, &tuple(), 42, k, false).is_err(),
                    "start {start} age {age}"
                );
            }
        }
    }

    #[test]
    fn previous_secret_validates_and_rotation_holds_for_long_periods() {
        // With a long rotation the 60 s guarantee comes from the counter alone.
        let mut c = SynCookies::new([2; 32], 3600);
        let k = c.mint(NOW, &tuple(), 5, 0);
        c.refresh(NOW + 150);
        assert!(c.check(NOW + 150, &tuple(), 5, k, false).is_ok());
    }

    #[test]
    fn wrong_tuple_isn_or_seed_fails() {
        let c = SynCookies::new([3; 32], 60);
        let k = c.mint(NOW, &tuple(), 77, 2);
        let mut t = tuple();
        t.sport += 1;
        assert_eq!(c.check(NOW, &t, 77, k, false), Err(CookieError::Invalid));
        let mut t = tuple();
        t.src = "198.51.100.21".parse().unwrap();
        assert_eq!(c.check(NOW, &t, 77, k, false), Err(CookieError::Invalid));
        assert_eq!(
            c.check(NOW, &tuple(), 78, k, false),
            Err(CookieError::Invalid)
        );
        assert_eq!(
            c.check(NOW, &tuple(), 77, k ^ 1, false),
            Err(CookieError::Invalid)
        );
        assert_eq!(
            c.check(NOW, &tuple(), 77, k.wrapping_add(1 << 6), false),
            Err(CookieError::Invalid)
        );
        let other = SynCookies::new([4; 32], 60);
        assert_eq!(
            other.check(NOW, &tuple(), 77, k, false),
            Err(CookieError::Invalid)
        );
    }

    /// What `export` hands another implementation is what mint and check use: the epochs
    /// around now in order, each with the key minting uses, and after a rotation on demand
    /// the retired secrets with their epochs.
    #[test]
    fn export_gives_the_keys_mint_and_check_use() {
        let c = SynCookies::new([6; 32], 60);
        let e = c.export(NOW);
        let now_epoch = NOW / 60;
        assert_eq!(e.rotate_secs, 60);
        for (i, k) in e.keys.iter().enumerate() {
            assert_eq!(k.epoch, now_epoch - 1 + i as u64);
            assert!(k.check);
            assert_eq!(k.key, c.derive_key(k.epoch));
        }
        assert!(e.retired.iter().all(|r| r.until == 0));
        // A cookie minted with the exported key of the current epoch is the cookie.
        let k = e.keys[1].key;
        let counter = NOW / COUNTER_SECS;
        let mac = SynCookies::mac(k, &tuple(), 9, counter, 4);
        let cookie =
            (mac << 6) | (((now_epoch & 1) as u32) << 5) | (((counter & 3) as u32) << 3) | 4;
        assert_eq!(cookie, c.mint(NOW, &tuple(), 9, 4));

        let r = c.rotated([7; 32], NOW + 5);
        let e = r.export(NOW + 5);
        let retired: Vec<u64> = e
            .retired
            .iter()
            .filter(|r| r.until != 0)
            .map(|r| r.epoch)
            .collect();
        assert_eq!(retired.len(), 2);
        assert!(retired.contains(&now_epoch) && retired.contains(&(now_epoch - 1)));
        // The epoch before the rotation validates only with its retired secret.
        assert!(!e.keys[0].check && e.keys[1].check);
    }

    #[test]
    fn fleet_nodes_sharing_a_seed_validate_each_other() {
        let a = SynCookies::new([9; 32], 60);
        let mut b = SynCookies::new([9; 32], 60);
        let k = a.mint(NOW, &tuple(), 1, 1);
        b.refresh(NOW + 30);
        assert!(b.check(NOW + 30, &tuple(), 1, k, false).is_ok());
    }

    #[test]
    fn ipv6_tuples() {
        let c = SynCookies::new([5; 32], 60);
        let t = CookieTuple {
            src: "2001:db8::20".parse().unwrap(),
            dst: "2001:db8:100:1::10".parse().unwrap(),
            sport: 1,
            dport: 22,
        };
        let k = c.mint(NOW, &t, 9, 6);
        assert_eq!(c.check(NOW, &t, 9, k, true), Ok(Decoded { mss: 1440 }));
        // The IPv4-mapped form of an IPv4 tuple is a different tuple.
        let v4 = tuple();
        let mapped = CookieTuple {
            src: "::ffff:198.51.100.20".parse().unwrap(),
            dst: "::ffff:203.0.113.10".parse().unwrap(),
            ..v4
        };
        let k4 = c.mint(NOW, &v4, 9, 0);
        assert!(c.check(NOW, &mapped, 9, k4, true).is_err());
    }

    #[test]
    fn a_rotation_invalidates_no_cookie_younger_than_60s() {
        for rotate_at in NOW..NOW + 120 {
            let c = SynCookies::new([1; 32], 60);
            let r = c.rotated([2; 32], rotate_at);
            let after = r.mint(rotate_at, &tuple(), 42, 3);
            assert_ne!(c.mint(rotate_at, &tuple(), 42, 3), after, "a new secret");
            // Cookies minted in the minute before the rotation, checked until they are 60 s
            // old; the new cookie for its first minute.
            for minted in (rotate_at - 59..=rotate_at).step_by(4) {
                let mut m = c.clone();
                m.refresh(minted);
                let before = m.mint(minted, &tuple(), 42, 3);
                for at in (rotate_at..minted + 60).step_by(3) {
                    let mut x = r.clone();
                    x.refresh(at);
                    assert!(
                        x.check(at, &tuple(), 42, before, false).is_ok(),
                        "rotated at {rotate_at}, minted {minted}, checked {at}"
                    );
                }
            }
            for at in rotate_at..rotate_at + 60 {
                let mut x = r.clone();
                x.refresh(at);
                assert!(
                    x.check(at, &tuple(), 42, after, false).is_ok(),
                    "{rotate_at} {at}"
                );
            }
            // Two periods on, nothing from before the rotation validates.
            let mut m = c.clone();
            m.refresh(rotate_at - 1);
            let before = m.mint(rotate_at - 1, &tuple(), 42, 3);
            let mut x = r.clone();
            x.refresh(rotate_at + 121);
            assert!(
                x.check(rotate_at + 121, &tuple(), 42, before, false)
                    .is_err()
            );
            // The old state does not know the new secret; the flow-hash key does not change.
            assert!(c.check(rotate_at, &tuple(), 42, after, false).is_err());
            assert_eq!(r.derived_u64(b"x"), c.derived_u64(b"x"));
        }
    }

    #[test]
    fn rotating_twice_keeps_cookies_to_their_natural_end_and_fleets_agree() {
        let c = SynCookies::new([1; 32], 60);
        let first = c.mint(NOW, &tuple(), 1, 0);
        let r1 = c.rotated([2; 32], NOW + 1);
        let second = r1.mint(NOW + 1, &tuple(), 1, 0);
        let r2 = r1.rotated([3; 32], NOW + 2);
        for at in [NOW + 2, NOW + 59] {
            let mut x = r2.clone();
            x.refresh(at);
            assert!(x.check(at, &tuple(), 1, first, false).is_ok(), "{at}");
            assert!(x.check(at, &tuple(), 1, second, false).is_ok(), "{at}");
        }
        let mut x = r2.clone();
        x.refresh(NOW + 125);
        assert!(x.check(NOW + 125, &tuple(), 1, first, false).is_err());
        assert!(x.check(NOW + 125, &tuple(), 1, second, false).is_err());
        // Another node rotating to the same seeds at the same moments validates the same.
        let other = SynCookies::new([1; 32], 60)
            .rotated([2; 32], NOW + 1)
            .rotated([3; 32], NOW + 2);
        let third = r2.mint(NOW + 3, &tuple(), 1, 0);
        assert!(other.check(NOW + 3, &tuple(), 1, third, false).is_ok());
    }

    /// A node rotated to seed S on demand and a node that loads S from its configuration (or
    /// the first node restarted with S) agree on every cookie from the rotation on, whatever
    /// second the rotation happened at: the epoch clock is not moved by it.
    #[test]
    fn a_rotated_node_agrees_with_one_that_loads_the_same_seed_and_with_its_restart() {
        for rotate_at in (NOW..NOW + 130).step_by(3) {
            let rotated = SynCookies::new([1; 32], 60).rotated([2; 32], rotate_at);
            let loaded = SynCookies::new([2; 32], 60);
            // 60 samples over the 120 s after the rotation, both ways.
            let (mut a_on_b, mut b_on_a) = (0, 0);
            for i in 0..60u32 {
                let at = rotate_at + u64::from(i) * 2;
                let (mut a, mut b) = (rotated.clone(), loaded.clone());
                a.refresh(at);
                b.refresh(at);
                let isn = 1000 + i;
                let (ka, kb) = (a.mint(at, &tuple(), isn, 2), b.mint(at, &tuple(), isn, 2));
                assert_eq!(ka, kb, "the same secret mints the same cookie");
                a_on_b += u32::from(b.check(at + 1, &tuple(), isn, ka, false).is_ok());
                b_on_a += u32::from(a.check(at + 1, &tuple(), isn, kb, false).is_ok());
            }
            assert_eq!((a_on_b, b_on_a), (60, 60), "rotated at {rotate_at}");
            // Restarted after the rotation with the persisted seed: the cookies the rotated
            // state handed out still validate for as long as they would have.
            for minted in (rotate_at..rotate_at + 120).step_by(5) {
                let mut a = rotated.clone();
                a.refresh(minted);
                let k = a.mint(minted, &tuple(), 7, 1);
                for age in [0, 1, 30, 59] {
                    let mut restarted = SynCookies::new([2; 32], 60);
                    restarted.refresh(minted + age);
                    assert!(
                        restarted.check(minted + age, &tuple(), 7, k, false).is_ok(),
                        "rotated at {rotate_at}, minted {minted}, age {age}"
                    );
                }
            }
        }
    }

    #[test]
    fn fleet_seeds_agree_across_nodes_and_differ_from_other_seeds() {
        let a = SynCookies::fleet([9; 32], 60);
        let b = SynCookies::fleet([9; 32], 60);
        let other = SynCookies::fleet([8; 32], 60);
        assert!(a.is_fleet() && !SynCookies::new([9; 32], 60).is_fleet());
        let (mut ok_ab, mut ok_other) = (0, 0);
        for i in 0..60u32 {
            let at = NOW + u64::from(i) * 2;
            let (mut a, mut b, mut o) = (a.clone(), b.clone(), other.clone());
            a.refresh(at);
            b.refresh(at);
            o.refresh(at);
            let k = a.mint(at, &tuple(), i, 4);
            ok_ab += u32::from(b.check(at + 3, &tuple(), i, k, false).is_ok());
            ok_other += u32::from(o.check(at + 3, &tuple(), i, k, false).is_ok());
        }
        assert_eq!((ok_ab, ok_other), (60, 0));
        // The flow-hash key is the seed's, the same on every node; another seed's differs, as
        // does the per-node derivation of the same bytes.
        assert_eq!(a.derived_u64(b"flow"), b.derived_u64(b"flow"));
        assert_ne!(a.derived_u64(b"flow"), other.derived_u64(b"flow"));
        assert_ne!(
            a.derived_u64(b"flow"),
            SynCookies::new([9; 32], 60).derived_u64(b"flow")
        );
        // Every epoch has its own secret, the same on both nodes.
        let e = NOW / 60;
        assert_ne!(a.derive_key(e), a.derive_key(e + 1));
        assert_eq!(a.derive_key(e + 1), b.derive_key(e + 1));
    }

    /// A fleet seed generation keys each epoch with the seed of its side of the boundary,
    /// exactly as the plain fleet state of that seed does, and keeps the replaced seed's
    /// flow-hash key.
    #[test]
    fn a_fleet_generation_switches_seeds_at_its_epoch() {
        let from = NOW / 60 + 1;
        let g = SynCookies::fleet_from([1; 32], [2; 32], from, 60);
        let (old, new) = (
            SynCookies::fleet([1; 32], 60),
            SynCookies::fleet([2; 32], 60),
        );
        assert!(g.is_fleet());
        for at in (from - 2) * 60..(from + 2) * 60 {
            let (mut g, mut reference) = (
                g.clone(),
                if at / 60 < from {
                    old.clone()
                } else {
                    new.clone()
                },
            );
            g.refresh(at);
            reference.refresh(at);
            let k = g.mint(at, &tuple(), 3, 1);
            assert_eq!(k, reference.mint(at, &tuple(), 3, 1), "at {at}");
            assert!(g.check(at, &tuple(), 3, k, false).is_ok(), "at {at}");
        }
        // The last second of the old seed: its cookie validates through the new seed's first
        // epoch (the previous-epoch rule), whether the state is refreshed or not.
        let last = from * 60 - 1;
        let k = old.mint(last, &tuple(), 4, 2);
        for at in [last + 1, last + 30, last + 59, last + 60] {
            let mut x = g.clone();
            x.refresh(at);
            assert!(x.check(at, &tuple(), 4, k, false).is_ok(), "at {at}");
            assert!(g.check(at, &tuple(), 4, k, false).is_ok(), "at {at}");
        }
        let mut x = g.clone();
        x.refresh(last + 62);
        assert!(x.check(last + 62, &tuple(), 4, k, false).is_err());
        // The old seed's cookies of a later epoch (a node that missed the change) do not.
        let stale = old.mint(from * 60 + 5, &tuple(), 4, 2);
        assert!(g.check(from * 60 + 5, &tuple(), 4, stale, false).is_err());
        assert_eq!(g.derived_u64(b"f"), old.derived_u64(b"f"));
        assert_ne!(g.derived_u64(b"f"), new.derived_u64(b"f"));
        // The generation is part of the configuration the state is built from.
        let cfg = CookieConfig {
            seed: Some([2; 32]),
            fleet: true,
            previous_seed: Some([1; 32]),
            seed_from: from,
            ..CookieConfig::default()
        };
        let built = SynCookies::for_config(&cfg, [2; 32]);
        assert_eq!(
            built.mint(last, &tuple(), 1, 1),
            g.mint(last, &tuple(), 1, 1)
        );
        assert_eq!(
            built.mint(last + 1, &tuple(), 1, 1),
            g.mint(last + 1, &tuple(), 1, 1)
        );
    }

    /// A node running since before a change that it learns of at second `s` of epoch `E`
    /// (the generation starts at `E + 1`), and nodes started afresh from the generation at
    /// any moment, mint identical cookies at every second and validate each other's.
    #[test]
    fn a_running_node_and_fresh_starts_agree_on_every_epoch_of_a_generation() {
        let e = NOW / 60;
        for s in [e * 60, e * 60 + 31, e * 60 + 59] {
            let running = CookieSecrets::new(SynCookies::fleet([1; 32], 60));
            let hash = running.current().derived_u64(b"f");
            let before = running.current().mint(s, &tuple(), 9, 1);
            running.reseed(&SynCookies::fleet_from([1; 32], [2; 32], e + 1, 60));
            assert_eq!(running.generation(), 1);
            let a = running.current();
            assert_eq!(a.derived_u64(b"f"), hash, "the flow hash stays");
            assert!(a.check(s, &tuple(), 9, before, false).is_ok());
            let fresh = SynCookies::fleet_from([1; 32], [2; 32], e + 1, 60);
            for at in s..(e + 3) * 60 {
                let (mut a, mut b) = (a.clone(), fresh.clone());
                a.refresh(at);
                b.refresh(at);
                let isn = at as u32;
                let k = a.mint(at, &tuple(), isn, 5);
                assert_eq!(k, b.mint(at, &tuple(), isn, 5), "s {s} at {at}");
                for age in [0, 1, 30, 59] {
                    let (mut a2, mut b2) = (a.clone(), b.clone());
                    a2.refresh(at + age);
                    b2.refresh(at + age);
                    assert!(
                        a2.check(at + age, &tuple(), isn, k, false).is_ok(),
                        "{s} {at} {age}"
                    );
                    assert!(
                        b2.check(at + age, &tuple(), isn, k, false).is_ok(),
                        "{s} {at} {age}"
                    );
                }
            }
        }
    }

    #[test]
    fn many_rotations_keep_a_bounded_set_of_secrets() {
        let mut c = SynCookies::new([0; 32], 60);
        let first = c.mint(NOW, &tuple(), 5, 0);
        for i in 1..=3u8 {
            c = c.rotated([i; 32], NOW + u64::from(i));
        }
        // Three rotations in one minute: the first seed's cookie still validates.
        assert!(c.check(NOW + 4, &tuple(), 5, first, false).is_ok());
        for i in 4..=40u8 {
            c = c.rotated([i; 32], NOW + u64::from(i));
        }
        // Dozens more: the newest retired secrets are kept, the oldest go early.
        assert!(c.check(NOW + 41, &tuple(), 5, first, false).is_err());
        assert!(c.retired.iter().filter(|r| r.until != 0).count() <= RETIRED_SECRETS);
        let newest = c.mint(NOW + 41, &tuple(), 5, 0);
        assert!(c.check(NOW + 41, &tuple(), 5, newest, false).is_ok());
    }

    #[test]
    fn shared_secrets_publish_rotations() {
        let s = CookieSecrets::new(SynCookies::new([1; 32], 60));
        let k = s.current().mint(NOW, &tuple(), 9, 1);
        assert_eq!(s.generation(), 0);
        s.rotate([5; 32], NOW);
        assert_eq!(s.generation(), 1);
        let c = s.current();
        assert!(c.check(NOW, &tuple(), 9, k, false).is_ok());
        assert_ne!(c.mint(NOW, &tuple(), 9, 1), k);
    }

    #[test]
    fn mss_index_rounds_down() {
        assert_eq!(mss_index(false, None), 0);
        assert_eq!(mss_index(false, Some(100)), 0);
        assert_eq!(mss_index(false, Some(1460)), 6);
        assert_eq!(mss_index(false, Some(1459)), 5);
        assert_eq!(mss_index(false, Some(65535)), 7);
        assert_eq!(mss_index(true, Some(1440)), 6);
        assert_eq!(mss_index(true, Some(1300)), 1);
    }

    #[test]
    fn timestamp_option_bits() {
        let o = TsOptions {
            wscale: Some(7),
            sack_perm: true,
            ecn: false,
        };
        let ts = encode_tsval(1_000_000, o);
        assert!(ts <= 1_000_000);
        assert_eq!(decode_tsecr(ts), o);
        let none = TsOptions::default();
        assert_eq!(decode_tsecr(encode_tsval(5, none)), none);
        let all = TsOptions {
            wscale: Some(14),
            sack_perm: true,
            ecn: true,
        };
        assert_eq!(decode_tsecr(encode_tsval(u32::MAX, all)), all);
        // Near zero the TSval wraps rather than running ahead of our clock.
        let ts = encode_tsval(3, all);
        assert_eq!(decode_tsecr(ts), all);
        assert_eq!(ts, 3u32.wrapping_sub(64) & !0x3f | 0x3e);
    }

    proptest! {
        #[test]
        fn any_minted_cookie_validates_and_neighbours_do_not(
            seed in any::<[u8; 32]>(), isn in any::<u32>(), sport in any::<u16>(),
            dport in any::<u16>(), src in any::<u32>(), now in 1_000_000u64..4_000_000_000, idx in 0u8..8,
            age in 0u64..60, flip in 0u32..32,
        ) {
            let t = CookieTuple { src: IpAddr::V4(src.into()), dst: "203.0.113.10".parse().unwrap(), sport, dport };
            let mut c = SynCookies::new(seed, 60);
            c.refresh(now);
            let k = c.mint(now, &t, isn, idx);
            c.refresh(now + age);
            prop_assert_eq!(c.check(now + age, &t, isn, k, false).map(|d| d.mss), Ok(MSS_TABLE_V4[usize::from(idx)]));
            // Flipping any MAC bit fails; flipping a low bit changes what is checked.
            if flip >= 6 {
                prop_assert!(c.check(now + age, &t, isn, k ^ (1 << flip), false).is_err());
            }
        }
    }
}
