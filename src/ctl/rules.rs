//! `fastpathctl rules`: IP access rules on the source address
//! (`/client/v4/zones/{zone}/firewall/access_rules/rules`).
//!
//! `replace` puts the whole list at once, from a JSON array (either shape the API knows, or
//! what `fastpathctl --json rules list` printed) or from the `[[access_rules]]` of a TOML file,
//! loaded with the config loader so a mistake gets its line number.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use hyper::Method;
use serde_json::{Map, Value, json};

use super::client::encode;
use super::error::CtlError;
use super::output::{Table, text};
use super::{ChangeOpts, Ctl, Req, ZONE, display_name, read_input};

/// `fastpathctl rules ...`.
#[derive(Debug, Subcommand)]
pub enum RulesCmd {
    /// List the rules.
    List,
    /// Add a rule (the longest matching prefix decides; apps with `ip_firewall` only).
    #[command(
        after_help = "Examples:\n  fastpathctl rules create --mode block --target ip_range --value 198.51.100.0/24\n  fastpathctl rules create --mode allow --target ip --value 198.51.100.7 --id office"
    )]
    Create {
        /// Allow or block.
        #[arg(long, value_parser = ["allow", "block"])]
        mode: String,
        /// What `--value` is: one address, or a prefix.
        #[arg(long, value_parser = ["ip", "ip_range"])]
        target: String,
        /// An address (`ip`) or a CIDR (`ip_range`).
        #[arg(long, value_name = "V")]
        value: String,
        /// A stable id (letters, digits, `.`, `_`, `-`). Default: the CIDR.
        #[arg(long)]
        id: Option<String>,
        /// Dry run and compare-and-swap.
        #[command(flatten)]
        change: ChangeOpts,
    },
    /// Remove a rule, by id (the CIDR, unless it was given one).
    Delete {
        /// The rule's id.
        id: String,
        /// Dry run and compare-and-swap.
        #[command(flatten)]
        change: ChangeOpts,
    },
    /// Replace every rule with those of FILE: a JSON array of rules, or a TOML file with
    /// `[[access_rules]]` (`-`: JSON on stdin).
    #[command(
        after_help = "Examples:\n  fastpathctl rules replace rules.json\n  fastpathctl rules replace edge.toml --dry-run\n  fastpathctl --json rules list > rules.json   # round-trips through replace"
    )]
    Replace {
        /// The file.
        file: PathBuf,
        /// Dry run and compare-and-swap.
        #[command(flatten)]
        change: ChangeOpts,
    },
}

/// The collection's path.
pub fn rules_path() -> String {
    format!("/client/v4/zones/{ZONE}/firewall/access_rules/rules")
}

/// One rule as the daemon's `PUT` takes it: `{id?, mode, target, value}`. The public shape's
/// `configuration` is flattened and `notes` dropped; an `id` holding a `/` is the CIDR the
/// daemon reports for a rule without an id (ids cannot hold a `/`) and is dropped too.
pub fn normalize_rule(r: &Value) -> Value {
    let Value::Object(m) = r else {
        return r.clone();
    };
    let mut out = Map::new();
    for (k, v) in m {
        match k.as_str() {
            "configuration" => {
                if let Value::Object(c) = v {
                    for (ck, cv) in c {
                        out.insert(ck.clone(), cv.clone());
                    }
                }
            }
            "notes" => {}
            "id" if v.as_str().is_some_and(|s| s.contains('/')) => {}
            _ => {
                out.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    Value::Object(out)
}

/// The rules of a `replace` file: a JSON array, or the `[[access_rules]]` of TOML.
///
/// # Errors
/// [`CtlError::LocalFile`] (unreadable, not JSON, no rules in it), [`CtlError::Invalid`] (a
/// TOML file that does not validate).
pub fn replace_body(path: &Path, text: &str) -> Result<Value, CtlError> {
    let name = display_name(path);
    let json_like = path.extension().is_some_and(|e| e == "json")
        || (path.extension().is_none_or(|e| e != "toml") && text.trim_start().starts_with('['));
    if json_like {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| CtlError::LocalFile(format!("{name} is not JSON: {e}")))?;
        let Value::Array(items) = v else {
            return Err(CtlError::LocalFile(format!(
                "{name} holds no JSON array of rules"
            )));
        };
        return Ok(Value::Array(items.iter().map(normalize_rule).collect()));
    }
    if !text.contains("access_rules") {
        return Err(CtlError::LocalFile(format!(
            "{name} has no [[access_rules]]; to remove every rule replace them with a JSON file \
             holding []"
        )));
    }
    let cfg = control::config::Config::from_toml_str(text).map_err(|e| CtlError::Invalid {
        errors: e
            .with_file(Path::new(&name))
            .to_string()
            .lines()
            .map(String::from)
            .collect(),
        file: name.clone(),
    })?;
    serde_json::to_value(&cfg.access_rules)
        .map_err(|e| CtlError::LocalFile(format!("{name}: cannot write its rules: {e}")))
}

/// The request of a `rules` command; `replace` reads its file.
///
/// # Errors
/// As [`replace_body`].
pub fn request(cmd: &RulesCmd) -> Result<Req, CtlError> {
    Ok(match cmd {
        RulesCmd::List => Req::get(rules_path()),
        RulesCmd::Create {
            mode,
            target,
            value,
            id,
            change,
        } => {
            let mut b = json!({ "mode": mode, "target": target, "value": value });
            if let Some(id) = id {
                b["id"] = json!(id);
            }
            Req::with(Method::POST, change.on(&rules_path()), b)
        }
        RulesCmd::Delete { id, change } => {
            Req::delete(change.on(&format!("{}/{}", rules_path(), encode(id.trim()))))
        }
        RulesCmd::Replace { file, change } => {
            let text = read_input(file)?;
            Req::with(
                Method::PUT,
                change.on(&rules_path()),
                replace_body(file, &text)?,
            )
        }
    })
}

/// Rules as a table.
pub fn table(v: &Value) -> String {
    let mut t = Table::new(&["ID", "MODE", "TARGET", "VALUE"]);
    for r in v.as_array().map(Vec::as_slice).unwrap_or_default() {
        let conf = r.get("configuration");
        t.row(vec![
            text(r.get("id")),
            text(r.get("mode")),
            text(
                r.get("target")
                    .or_else(|| conf.and_then(|c| c.get("target"))),
            ),
            text(r.get("value").or_else(|| conf.and_then(|c| c.get("value")))),
        ]);
    }
    t.render()
}

/// Runs `fastpathctl rules ...`.
///
/// # Errors
/// [`CtlError`].
pub fn run(ctl: &mut Ctl<'_>, cmd: &RulesCmd) -> Result<(), CtlError> {
    let req = request(cmd)?;
    match cmd {
        RulesCmd::List => ctl.show(&req, table),
        RulesCmd::Create { .. } => ctl.change(&req, |r| {
            format!(
                "rule {}: {} {} {}\n",
                text(r.get("id")),
                text(r.get("mode")),
                text(r.get("target")),
                text(r.get("value"))
            )
        }),
        RulesCmd::Delete { .. } => {
            ctl.change(&req, |r| format!("deleted rule {}\n", text(r.get("id"))))
        }
        RulesCmd::Replace { .. } => {
            ctl.change(&req, |r| format!("{} rules\n", text(r.get("count"))))
        }
    }
}

#[cfg(test)]
mod test {
    use super::super::Command;
    use super::super::test::{parse, parse_err};
    use super::*;

    fn rules(args: &[&str]) -> RulesCmd {
        let mut v = vec!["rules"];
        v.extend_from_slice(args);
        match parse(&v).command {
            Command::Rules { cmd } => cmd,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn create_and_delete_requests() {
        let r = request(&rules(&[
            "create",
            "--mode",
            "block",
            "--target",
            "ip",
            "--value",
            "192.0.2.77",
            "--id",
            "x",
        ]))
        .unwrap();
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.path, "/client/v4/zones/local/firewall/access_rules/rules");
        assert_eq!(
            r.body.unwrap(),
            json!({"mode": "block", "target": "ip", "value": "192.0.2.77", "id": "x"})
        );
        let r = request(&rules(&["delete", "198.51.100.0/24", "--dry-run"])).unwrap();
        assert_eq!(
            r.path,
            "/client/v4/zones/local/firewall/access_rules/rules/198.51.100.0%2F24?dry_run=true"
        );
        let e = parse_err(&[
            "rules", "create", "--mode", "deny", "--target", "ip", "--value", "x",
        ]);
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn listed_rules_round_trip_into_replace() {
        let listed = json!([
            {"id": "198.51.100.0/24", "mode": "block", "target": "ip_range",
             "value": "198.51.100.0/24",
             "configuration": {"target": "ip_range", "value": "198.51.100.0/24"}},
            {"id": "office", "mode": "allow", "configuration": {"target": "ip", "value": "198.51.100.7"},
             "notes": "n"},
        ]);
        let body = replace_body(Path::new("rules.json"), &listed.to_string()).unwrap();
        assert_eq!(
            body,
            json!([
                {"mode": "block", "target": "ip_range", "value": "198.51.100.0/24"},
                {"id": "office", "mode": "allow", "target": "ip", "value": "198.51.100.7"},
            ])
        );
        assert!(replace_body(Path::new("r.json"), "{}").is_err());
        assert!(replace_body(Path::new("r.json"), "[").is_err());
    }

    #[test]
    fn toml_rules_are_checked_with_line_numbers() {
        let toml = "[[access_rules]]\nmode = \"block\"\ntarget = \"ip_range\"\nvalue = \"198.51.100.0/24\"\n";
        let body = replace_body(Path::new("rules.toml"), toml).unwrap();
        assert_eq!(
            body,
            json!([{"mode": "block", "target": "ip_range", "value": "198.51.100.0/24"}])
        );
        let bad = "[[access_rules]]\nmode = \"block\"\ntarget = \"ip\"\nvalue = \"not-an-ip\"\n";
        let e = replace_body(Path::new("rules.toml"), bad).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(e.to_string().contains("rules.toml:"), "{e}");
        let e = replace_body(Path::new("x.toml"), "[node]\nname = \"a\"\n").unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn table_reads_either_shape() {
        let t = table(&json!([{"id": "a", "mode": "allow",
            "configuration": {"target": "ip", "value": "192.0.2.1"}}]));
        assert_eq!(
            t,
            "ID  MODE   TARGET  VALUE\na   allow  ip      192.0.2.1\n"
        );
    }
}
