//! `fastpathctl prefixes`, `bindings` and `validate-origin`: BYOIP prefixes, their service
//! bindings (`/client/v4/accounts/{account}/addressing/prefixes`), and the origin check.
//!
//! Prefixes are given as CIDRs and sent in the id form of the API (`203.0.113.0-24`); a binding
//! is given by its id or its CIDR, sent with `/` as `-` (`203.0.113.128-25`).

use clap::{Args, Subcommand};
use hyper::Method;
use ipnet::IpNet;
use serde_json::{Value, json};

use super::client::encode;
use super::error::CtlError;
use super::output::{Table, or_default, text};
use super::{ACCOUNT, ChangeOpts, Ctl, Req};

/// `fastpathctl prefixes ...`.
#[derive(Debug, Subcommand)]
pub enum PrefixesCmd {
    /// List the onboarded prefixes.
    List,
    /// Onboard a prefix. An advertised prefix needs a binding spanning it whole first: create
    /// it with --no-advertise, bind it, then apply the whole config (or use `config apply`).
    #[command(
        after_help = "Example:\n  fastpathctl prefixes create 198.51.100.0/24 --no-advertise"
    )]
    Create {
        /// The prefix: IPv4 /24 or shorter, IPv6 /48 or shorter.
        #[arg(value_parser = parse_prefix, value_name = "CIDR")]
        cidr: IpNet,
        /// Onboard it without announcing it.
        #[arg(long)]
        no_advertise: bool,
        /// Dry run and compare-and-swap.
        #[command(flatten)]
        change: ChangeOpts,
    },
    /// Remove a prefix (remove its bindings first).
    Delete {
        /// The prefix (`203.0.113.0/24` or `203.0.113.0-24`).
        #[arg(value_parser = parse_prefix, value_name = "CIDR")]
        cidr: IpNet,
        /// Dry run and compare-and-swap.
        #[command(flatten)]
        change: ChangeOpts,
    },
}

/// `fastpathctl bindings ...`.
#[derive(Debug, Subcommand)]
pub enum BindingsCmd {
    /// List the bindings inside a prefix.
    List {
        /// The prefix (`203.0.113.0/24` or `203.0.113.0-24`).
        #[arg(value_parser = parse_prefix, value_name = "PREFIX")]
        prefix: IpNet,
    },
    /// Bind a range of a prefix to a service (the longest prefix wins).
    #[command(
        after_help = "Examples:\n  fastpathctl bindings create 203.0.113.0/24 --cidr 203.0.113.100/32 --service spectrum\n  fastpathctl bindings create 203.0.113.0/24 --cidr 203.0.113.64/26 --service cdn --unconfigured reset --id cdn-b"
    )]
    Create {
        /// The prefix it is inside.
        #[arg(value_parser = parse_prefix, value_name = "PREFIX")]
        prefix: IpNet,
        /// The range it binds.
        #[arg(long, value_parser = parse_prefix, value_name = "CIDR")]
        cidr: IpNet,
        /// The service.
        #[arg(long, value_parser = ["cdn", "spectrum"])]
        service: String,
        /// What a packet to a port nobody configured gets (default: drop).
        #[arg(long, value_parser = ["drop", "reset"])]
        unconfigured: Option<String>,
        /// A stable id (letters, digits, `.`, `_`, `-`). Default: the CIDR.
        #[arg(long)]
        id: Option<String>,
        /// Dry run and compare-and-swap.
        #[command(flatten)]
        change: ChangeOpts,
    },
    /// Remove a binding.
    Delete {
        /// The prefix it is inside.
        #[arg(value_parser = parse_prefix, value_name = "PREFIX")]
        prefix: IpNet,
        /// The binding's id, or its CIDR.
        binding: String,
        /// Dry run and compare-and-swap.
        #[command(flatten)]
        change: ChangeOpts,
    },
}

/// `fastpathctl validate-origin`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  fastpathctl validate-origin 192.0.2.1\n  fastpathctl validate-origin 10.0.0.0/8"
)]
pub struct ValidateOriginArgs {
    /// An address or a prefix.
    #[arg(value_name = "CIDR")]
    pub cidr: String,
}

/// Parses a prefix given as `203.0.113.0/24` or in the API's id form `203.0.113.0-24`.
///
/// # Errors
/// A message for clap: neither form.
pub fn parse_prefix(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| {
            s.rsplit_once('-')
                .and_then(|(a, l)| format!("{a}/{l}").parse().ok())
        })
        .ok_or_else(|| format!("{s:?} is not a prefix: give it as 203.0.113.0/24"))
}

/// The API's id of a prefix: its CIDR with `-` for `/` (`203.0.113.0-24`).
pub fn prefix_id(cidr: &IpNet) -> String {
    cidr.to_string().replace('/', "-")
}

/// The collection of prefixes.
pub fn prefixes_path() -> String {
    format!("/client/v4/accounts/{ACCOUNT}/addressing/prefixes")
}

/// A prefix's bindings.
pub fn bindings_path(prefix: &IpNet) -> String {
    format!(
        "{}/{}/bindings",
        prefixes_path(),
        encode(&prefix_id(prefix))
    )
}

/// A binding given by id or CIDR, as a path segment: `/` as `-`, the rest percent-encoded.
pub fn binding_segment(binding: &str) -> String {
    encode(&binding.trim().replace('/', "-"))
}

/// The request of a `prefixes` command.
pub fn prefixes_request(cmd: &PrefixesCmd) -> Req {
    match cmd {
        PrefixesCmd::List => Req::get(prefixes_path()),
        PrefixesCmd::Create {
            cidr,
            no_advertise,
            change,
        } => Req::with(
            Method::POST,
            change.on(&prefixes_path()),
            json!({ "cidr": cidr.to_string(), "advertised": !no_advertise }),
        ),
        PrefixesCmd::Delete { cidr, change } => {
            Req::delete(change.on(&format!("{}/{}", prefixes_path(), encode(&prefix_id(cidr)))))
        }
    }
}

/// The request of a `bindings` command.
pub fn bindings_request(cmd: &BindingsCmd) -> Req {
    match cmd {
        BindingsCmd::List { prefix } => Req::get(bindings_path(prefix)),
        BindingsCmd::Create {
            prefix,
            cidr,
            service,
            unconfigured,
            id,
            change,
        } => {
            let mut b = json!({ "cidr": cidr.to_string(), "service": service });
            if let Some(u) = unconfigured {
                b["unconfigured"] = json!(u);
            }
            if let Some(id) = id {
                b["id"] = json!(id);
            }
            Req::with(Method::POST, change.on(&bindings_path(prefix)), b)
        }
        BindingsCmd::Delete {
            prefix,
            binding,
            change,
        } => Req::delete(change.on(&format!(
            "{}/{}",
            bindings_path(prefix),
            binding_segment(binding)
        ))),
    }
}

/// Prefixes as a table.
pub fn prefixes_table(v: &Value) -> String {
    let mut t = Table::new(&["ID", "CIDR", "ADVERTISED"]);
    for p in v.as_array().map(Vec::as_slice).unwrap_or_default() {
        t.row(vec![
            text(p.get("id")),
            text(p.get("cidr")),
            or_default(p.get("advertised"), "yes"),
        ]);
    }
    t.render()
}

/// Bindings as a table.
pub fn bindings_table(v: &Value) -> String {
    let mut t = Table::new(&["ID", "CIDR", "SERVICE", "UNCONFIGURED", "STATE"]);
    for b in v.as_array().map(Vec::as_slice).unwrap_or_default() {
        t.row(vec![
            text(b.get("id")),
            text(b.get("cidr")),
            text(b.get("service").or_else(|| b.get("service_name"))),
            or_default(b.get("unconfigured"), "drop"),
            text(b.get("provisioning").and_then(|p| p.get("state"))),
        ]);
    }
    t.render()
}

/// Runs `fastpathctl prefixes ...`.
///
/// # Errors
/// [`CtlError`].
pub fn prefixes(ctl: &mut Ctl<'_>, cmd: &PrefixesCmd) -> Result<(), CtlError> {
    let req = prefixes_request(cmd);
    match cmd {
        PrefixesCmd::List => ctl.show(&req, prefixes_table),
        PrefixesCmd::Create { .. } => ctl.change(&req, |r| {
            format!(
                "prefix {} (id {}, {})\n",
                text(r.get("cidr")),
                text(r.get("id")),
                if r.get("advertised").and_then(Value::as_bool) == Some(false) {
                    "not advertised"
                } else {
                    "advertised"
                }
            )
        }),
        PrefixesCmd::Delete { .. } => {
            ctl.change(&req, |r| format!("deleted prefix {}\n", text(r.get("id"))))
        }
    }
}

/// Runs `fastpathctl bindings ...`.
///
/// # Errors
/// [`CtlError`].
pub fn bindings(ctl: &mut Ctl<'_>, cmd: &BindingsCmd) -> Result<(), CtlError> {
    let req = bindings_request(cmd);
    match cmd {
        BindingsCmd::List { .. } => ctl.show(&req, bindings_table),
        BindingsCmd::Create { .. } => ctl.change(&req, |r| {
            format!(
                "binding {} ({} to {}, unconfigured {})\n",
                text(r.get("id")),
                text(r.get("cidr")),
                text(r.get("service")),
                or_default(r.get("unconfigured"), "drop")
            )
        }),
        BindingsCmd::Delete { .. } => {
            ctl.change(&req, |r| format!("deleted binding {}\n", text(r.get("id"))))
        }
    }
}

/// The request of `validate-origin`.
pub fn validate_origin_request(a: &ValidateOriginArgs) -> Req {
    Req::get(format!(
        "/client/v4/edge_services/spectrum/validate_origin_ip_acl?cidr={}",
        encode(a.cidr.trim())
    ))
}

/// The origin check as a table, one row per address or prefix answered.
pub fn origins_table(v: &Value) -> String {
    let mut t = Table::new(&[
        "ORIGIN",
        "ALLOWED",
        "MANAGED",
        "DELEGATED",
        "RESERVED",
        "HAS BINDING",
    ]);
    if let Some(m) = v.get("allowed_origins").and_then(Value::as_object) {
        for (k, c) in m {
            t.row(vec![
                k.clone(),
                text(c.get("allowed")),
                text(c.get("is_managed")),
                text(c.get("is_delegated")),
                text(c.get("is_reserved")),
                text(c.get("has_binding")),
            ]);
        }
    }
    t.render()
}

/// Runs `fastpathctl validate-origin`.
///
/// # Errors
/// [`CtlError`].
pub fn validate_origin(ctl: &mut Ctl<'_>, a: &ValidateOriginArgs) -> Result<(), CtlError> {
    ctl.show(&validate_origin_request(a), origins_table)
}

#[cfg(test)]
mod test {
    use super::super::Command;
    use super::super::test::parse;
    use super::*;

    #[test]
    fn prefix_ids_both_ways() {
        let p = parse_prefix("203.0.113.0/24").unwrap();
        assert_eq!(prefix_id(&p), "203.0.113.0-24");
        assert_eq!(parse_prefix("203.0.113.0-24").unwrap(), p);
        let v6 = parse_prefix("2001:db8:100::/48").unwrap();
        assert_eq!(prefix_id(&v6), "2001:db8:100::-48");
        assert_eq!(parse_prefix("2001:db8:100::-48").unwrap(), v6);
        assert!(parse_prefix("example.com").is_err());
        assert_eq!(
            bindings_path(&v6),
            "/client/v4/accounts/local/addressing/prefixes/2001%3Adb8%3A100%3A%3A-48/bindings"
        );
        assert_eq!(binding_segment("203.0.113.128/25"), "203.0.113.128-25");
        assert_eq!(binding_segment("cdn-b"), "cdn-b");
    }

    #[test]
    fn arguments_to_requests() {
        let Command::Prefixes { cmd } =
            parse(&["prefixes", "create", "198.51.100.0/24", "--no-advertise"]).command
        else {
            panic!()
        };
        let r = prefixes_request(&cmd);
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/client/v4/accounts/local/addressing/prefixes")
        );
        assert_eq!(
            r.body.unwrap(),
            json!({"cidr": "198.51.100.0/24", "advertised": false})
        );
        let Command::Prefixes { cmd } =
            parse(&["prefixes", "delete", "198.51.100.0/24", "--dry-run"]).command
        else {
            panic!()
        };
        let r = prefixes_request(&cmd);
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            (
                "DELETE",
                "/client/v4/accounts/local/addressing/prefixes/198.51.100.0-24?dry_run=true"
            )
        );
        let Command::Bindings { cmd } = parse(&[
            "bindings",
            "create",
            "203.0.113.0/24",
            "--cidr",
            "203.0.113.100/32",
            "--service",
            "spectrum",
            "--unconfigured",
            "reset",
            "--id",
            "b1",
        ])
        .command
        else {
            panic!()
        };
        let r = bindings_request(&cmd);
        assert_eq!(
            r.path,
            "/client/v4/accounts/local/addressing/prefixes/203.0.113.0-24/bindings"
        );
        assert_eq!(
            r.body.unwrap(),
            json!({"cidr": "203.0.113.100/32", "service": "spectrum", "unconfigured": "reset",
                   "id": "b1"})
        );
        let Command::Bindings { cmd } = parse(&[
            "bindings",
            "delete",
            "203.0.113.0-24",
            "203.0.113.100/32",
            "--expected-version",
            "4",
        ])
        .command
        else {
            panic!()
        };
        assert_eq!(
            bindings_request(&cmd).path,
            "/client/v4/accounts/local/addressing/prefixes/203.0.113.0-24/bindings/\
             203.0.113.100-32?expected_version=4"
        );
        let r = validate_origin_request(&ValidateOriginArgs {
            cidr: "192.0.2.0/24".into(),
        });
        assert!(
            r.path
                .ends_with("validate_origin_ip_acl?cidr=192.0.2.0%2F24")
        );
    }

    #[test]
    fn tables() {
        let t = bindings_table(&json!([
            {"id": "203.0.113.0/24", "cidr": "203.0.113.0/24", "service": "spectrum",
             "provisioning": {"state": "active"}},
            {"id": "b", "cidr": "203.0.113.128/25", "service_name": "cdn", "unconfigured": "reset"}
        ]));
        assert_eq!(
            t,
            "ID              CIDR              SERVICE   UNCONFIGURED  STATE\n\
             203.0.113.0/24  203.0.113.0/24    spectrum  drop          active\n\
             b               203.0.113.128/25  cdn       reset         -\n"
        );
        let t = origins_table(&json!({"allowed_origins": {"192.0.2.1": {"allowed": true,
            "is_managed": false, "is_delegated": true, "is_reserved": true,
            "has_binding": false}}}));
        assert_eq!(
            t.lines().nth(1).unwrap(),
            "192.0.2.1  yes      no       yes        yes       no"
        );
        assert_eq!(prefixes_table(&json!({})), "ID  CIDR  ADVERTISED\n");
    }
}
