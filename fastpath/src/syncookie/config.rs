//! Settings of the SYN-cookie gate.

/// SYN-cookie settings. `Debug` never prints the seed.
#[derive(Clone, PartialEq, Eq)]
pub struct CookieConfig {
    /// Secret rotation period in seconds; cookies minted under the previous secret still
    /// validate, so a cookie younger than this always validates. At least 60.
    pub rotate_secs: u32,
    /// Shared seed from which every secret derives (with the time epoch). Nodes that share it
    /// validate each other's cookies. `None`: a random seed at start.
    pub seed: Option<[u8; 32]>,
    /// Whether `seed` is a fleet seed: secrets and the flow-hash key expand from it with
    /// HKDF ([`super::SynCookies::fleet`]), and a new one takes effect at an epoch boundary.
    pub fleet: bool,
    /// With a fleet seed: the seed it replaced, whose secrets key the epochs before
    /// `seed_from` (and whose flow-hash key stays; see [`super::SynCookies::fleet_from`]).
    pub previous_seed: Option<[u8; 32]>,
    /// With `previous_seed`: the first epoch (unix seconds / `rotate_secs`) whose secret
    /// expands from `seed`. Ignored without `previous_seed`.
    pub seed_from: u64,
    /// MSS the edge announces over IPv4. `None`: from the interface MTU (1500 in replay).
    pub mss4: Option<u16>,
    /// MSS the edge announces over IPv6. `None`: from the interface MTU (1500 in replay).
    pub mss6: Option<u16>,
    /// Window-scale shift the edge announces when the client offers window scaling.
    pub wscale: u8,
    /// Receive window in the SYN-ACK (unscaled, as RFC 7323 requires for SYN segments).
    pub window: u16,
}

/// What every SYN-ACK of a node says, whichever implementation sends it (the pipeline, or
/// the XDP program that mirrors it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynAckParams {
    /// The window.
    pub window: u16,
    /// Our window-scale shift (offered only when the client offers window scaling).
    pub wscale: u8,
    /// The MSS announced over IPv4.
    pub mss4: u16,
    /// The MSS announced over IPv6.
    pub mss6: u16,
}

impl CookieConfig {
    /// The SYN-ACK's fields on an interface of `mtu`: the configured MSS, else the MTU less
    /// the IP and TCP headers (never below the protocols' minimums).
    pub fn syn_ack(&self, mtu: u16) -> SynAckParams {
        SynAckParams {
            window: self.window,
            wscale: self.wscale.min(super::MAX_WSCALE),
            mss4: self.mss4.unwrap_or(mtu.saturating_sub(40).max(536)),
            mss6: self.mss6.unwrap_or(mtu.saturating_sub(60).max(1220)),
        }
    }
}

impl core::fmt::Debug for CookieConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CookieConfig")
            .field("rotate_secs", &self.rotate_secs)
            .field("seed", &self.seed.map(|_| "<redacted>"))
            .field("fleet", &self.fleet)
            .field("previous_seed", &self.previous_seed.map(|_| "<redacted>"))
            .field("seed_from", &self.seed_from)
            .field("mss4", &self.mss4)
            .field("mss6", &self.mss6)
            .field("wscale", &self.wscale)
            .field("window", &self.window)
            .finish()
    }
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            rotate_secs: 60,
            seed: None,
            fleet: false,
            previous_seed: None,
            seed_from: 0,
            mss4: None,
            mss6: None,
            wscale: 7,
            window: 65535,
        }
    }
}

/// Why a [`CookieConfig`] is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CookieConfigError {
    /// A value outside its range.
    #[error("{field} = {value} is out of range ({range})")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value.
        value: u64,
        /// The accepted range.
        range: &'static str,
    },
}

impl CookieConfig {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`CookieConfigError::OutOfRange`]: `rotate_secs` outside 60..=86400 (below 60 a cookie
    /// could expire before the client's ACK arrives), an MSS outside 536..=9000 (IPv4) or
    /// 1220..=9000 (IPv6), a window-scale shift above 14, a zero window (the client could send
    /// nothing).
    pub fn validate(self) -> Result<Self, CookieConfigError> {
        let bad = |field, value: u64, range| {
            Err(CookieConfigError::OutOfRange {
                field,
                value,
                range,
            })
        };
        if !(60..=86_400).contains(&self.rotate_secs) {
            return bad("rotate_secs", u64::from(self.rotate_secs), "60..=86400");
        }
        if let Some(m) = self.mss4.filter(|m| !(536..=9000).contains(m)) {
            return bad("mss", u64::from(m), "536..=9000");
        }
        if let Some(m) = self.mss6.filter(|m| !(1220..=9000).contains(m)) {
            return bad("mss6", u64::from(m), "1220..=9000");
        }
        if self.wscale > 14 {
            return bad("wscale", u64::from(self.wscale), "0..=14");
        }
        if self.window == 0 {
            return bad("window", 0, "1..=65535");
        }
        Ok(self)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn debug_redacts_the_seed_and_ranges_hold() {
        let c = CookieConfig {
            seed: Some([0xab; 32]),
            previous_seed: Some([0xcd; 32]),
            ..CookieConfig::default()
        };
        let d = format!("{c:?}");
        assert!(
            d.matches("<redacted>").count() == 2 && !d.contains("171") && !d.contains("205"),
            "{d}"
        );
        assert!(
            CookieConfig {
                window: 0,
                ..CookieConfig::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            CookieConfig {
                rotate_secs: 59,
                ..CookieConfig::default()
            }
            .validate()
            .is_err()
        );
        assert!(CookieConfig::default().validate().is_ok());
    }
}
