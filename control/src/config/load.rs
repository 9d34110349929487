//! Loading from text: TOML with line numbers and one shape error per table, JSON for API
//! bodies.
//!
//! The TOML document is parsed once into spanned values. The whole [`Config`] is deserialized
//! from them; if that fails, every top-level section and every element of every array of
//! tables is deserialized on its own, so each broken table reports its first problem. When the
//! shape is right, [`Config::validate`] runs and its errors get line numbers from the spans.

use std::collections::HashMap;
use std::ops::Range;

use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::error::{ConfigError, ConfigErrors, Rule};
use super::{
    AccessRule, Binding, Cdn, Config, Flows, Node, OriginPolicy, Pipeline, Prefix, Proxy,
    SpectrumApp, SpectrumSettings, SynCookies, Workers,
};

/// Top-level keys, in the order `docs/CONFIG.md` lists them.
pub(crate) const SECTIONS: &[&str] = &[
    "node",
    "syn_cookies",
    "pipeline",
    "flows",
    "workers",
    "proxy",
    "prefixes",
    "bindings",
    "cdn",
    "spectrum",
    "spectrum_apps",
    "access_rules",
    "origin_policy",
];

/// Byte spans of every key path in a document.
struct SpanIndex<'s> {
    src: &'s str,
    spans: HashMap<String, Range<usize>>,
}

impl<'s> SpanIndex<'s> {
    fn new(src: &'s str, doc: &Spanned<DeTable<'_>>) -> SpanIndex<'s> {
        fn walk(path: &str, v: &Spanned<DeValue<'_>>, out: &mut HashMap<String, Range<usize>>) {
            out.insert(path.to_string(), v.span());
            match v.get_ref() {
                DeValue::Table(t) => {
                    for (k, v) in t.iter() {
                        walk(&format!("{path}.{}", k.get_ref()), v, out);
                    }
                }
                DeValue::Array(a) => {
                    for (i, v) in a.iter().enumerate() {
                        walk(&format!("{path}[{i}]"), v, out);
                    }
                }
                _ => {}
            }
        }
        let mut spans = HashMap::new();
        for (k, v) in doc.get_ref().iter() {
            walk(k.get_ref(), v, &mut spans);
        }
        SpanIndex { src, spans }
    }

    /// 1-based line of a byte offset.
    fn line_at(&self, offset: usize) -> u32 {
        let offset = offset.min(self.src.len());
        self.src.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u32
            + 1
    }

    /// Line of `key`, or of its closest ancestor that is written in the file.
    fn line_of(&self, key: &str) -> Option<u32> {
        let mut k = key;
        loop {
            if let Some(span) = self.spans.get(k) {
                return Some(self.line_at(span.start));
            }
            let cut = k.rfind(['.', '['])?;
            k = &k[..cut];
        }
    }

    /// The source text of a span, on one line and shortened, for an error's `value`.
    fn text(&self, span: &Range<usize>) -> Option<String> {
        let t = self.src.get(span.clone())?.trim();
        if t.is_empty() || t.starts_with('[') && t.contains('\n') {
            return None;
        }
        let one_line: String = t.split_whitespace().collect::<Vec<_>>().join(" ");
        Some(if one_line.chars().count() > 80 {
            let cut: String = one_line.chars().take(77).collect();
            format!("{cut}...")
        } else {
            one_line
        })
    }
}

/// Appends serde_path_to_error's path to `prefix` in our key syntax.
fn join_path(prefix: &str, path: &serde_path_to_error::Path) -> String {
    let mut key = prefix.to_string();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => key.push_str(&format!("[{index}]")),
            Segment::Map { key: k } | Segment::Enum { variant: k } => {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(k);
            }
            Segment::Unknown => {}
        }
    }
    key
}

/// The name in a serde message "unknown field `x`, expected ..." / "missing field `x`".
fn quoted_name<'m>(msg: &'m str, lead: &str) -> Option<(&'m str, &'m str)> {
    let rest = msg.strip_prefix(lead)?;
    let (name, tail) = rest.split_once('`')?;
    Some((name, tail))
}

/// Turns a serde message at `key` into a [`ConfigError`] with our wording.
fn shape_error(key: String, msg: &str, value: Option<String>) -> ConfigError {
    let parent = |name: &str| {
        if key.is_empty() || key.ends_with(name) {
            key.clone()
        } else {
            format!("{key}.{name}")
        }
    };
    if let Some((name, tail)) = quoted_name(msg, "unknown field `") {
        let expected = tail.trim_start_matches(", ");
        let expected = if expected.starts_with("there are no fields") {
            "this table takes no keys".to_string()
        } else {
            expected.to_string()
        };
        return ConfigError::new(
            Rule::UnknownKey,
            parent(name),
            None,
            format!("unknown key; {expected}"),
        );
    }
    if let Some((name, _)) = quoted_name(msg, "missing field `") {
        return ConfigError::new(
            Rule::MissingKey,
            parent(name),
            None,
            "required key is missing",
        );
    }
    if key.ends_with("secret") {
        // serde's message may quote the value: never echo a secret.
        return ConfigError::new(
            Rule::InvalidValue,
            key,
            None,
            "the secret must be a string of 64 hex digits (32 bytes)",
        );
    }
    ConfigError::new(Rule::InvalidValue, key, value, msg.to_string())
}

/// Deserializes one spanned value as `T`, mapping the first error.
fn check<T: DeserializeOwned>(
    prefix: &str,
    v: &Spanned<DeValue<'_>>,
    index: &SpanIndex<'_>,
    out: &mut Vec<ConfigError>,
) {
    let de = ValueDeserializer::from(v.clone());
    if let Err(e) = serde_path_to_error::deserialize::<_, T>(de) {
        let key = join_path(prefix, e.path());
        let inner = e.inner();
        let span = inner.span();
        let value = span.as_ref().and_then(|s| index.text(s));
        let mut err = shape_error(key, inner.message(), value);
        err.line = span
            .map(|s| index.line_at(s.start))
            .or_else(|| index.line_of(&err.key));
        out.push(err);
    }
}

/// Like [`check`] for an array of tables: each element on its own.
fn check_each<T: DeserializeOwned>(
    name: &str,
    v: &Spanned<DeValue<'_>>,
    index: &SpanIndex<'_>,
    out: &mut Vec<ConfigError>,
) {
    match v.get_ref() {
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check::<T>(&format!("{name}[{i}]"), item, index, out);
            }
        }
        _ => check::<Vec<T>>(name, v, index, out),
    }
}

/// Every shape error of the document, one per table at most.
fn shape_errors(doc: &Spanned<DeTable<'_>>, index: &SpanIndex<'_>) -> Vec<ConfigError> {
    let mut out = Vec::new();
    for (k, v) in doc.get_ref().iter() {
        let name: &str = k.get_ref();
        match name {
            "node" => check::<Node>(name, v, index, &mut out),
            "syn_cookies" => check::<SynCookies>(name, v, index, &mut out),
            "pipeline" => check::<Pipeline>(name, v, index, &mut out),
            "flows" => check::<Flows>(name, v, index, &mut out),
            "workers" => check::<Workers>(name, v, index, &mut out),
            "proxy" => check::<Proxy>(name, v, index, &mut out),
            "prefixes" => check_each::<Prefix>(name, v, index, &mut out),
            "bindings" => check_each::<Binding>(name, v, index, &mut out),
            "cdn" => check::<Cdn>(name, v, index, &mut out),
            "spectrum" => check::<SpectrumSettings>(name, v, index, &mut out),
            "spectrum_apps" => check_each::<SpectrumApp>(name, v, index, &mut out),
            "access_rules" => check_each::<AccessRule>(name, v, index, &mut out),
            "origin_policy" => check::<OriginPolicy>(name, v, index, &mut out),
            _ => out.push(ConfigError {
                line: Some(index.line_at(k.span().start)),
                ..ConfigError::new(
                    Rule::UnknownKey,
                    name,
                    None,
                    format!(
                        "unknown section; expected one of {}",
                        SECTIONS
                            .iter()
                            .map(|s| format!("`{s}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            }),
        }
    }
    out.sort_by_key(|e| e.line);
    out
}

pub(crate) fn from_toml_str(src: &str) -> Result<Config, ConfigErrors> {
    let (doc, syntax) = DeTable::parse_recoverable(src);
    let index = SpanIndex::new(src, &doc);
    if !syntax.is_empty() {
        let errors = syntax
            .iter()
            .map(|e| ConfigError {
                line: e.span().map(|s| index.line_at(s.start)),
                ..ConfigError::new(
                    Rule::Syntax,
                    "",
                    None,
                    format!("TOML syntax: {}", e.message()),
                )
            })
            .collect();
        return Err(ConfigErrors::new(errors));
    }
    let whole = Spanned::new(doc.span(), DeValue::Table(doc.get_ref().clone()));
    let mut config =
        match serde_path_to_error::deserialize::<_, Config>(ValueDeserializer::from(whole)) {
            Ok(c) => c,
            Err(e) => {
                let mut errors = shape_errors(&doc, &index);
                if errors.is_empty() {
                    // Not expected: the per-table pass should find what the whole pass found.
                    errors.push(shape_error(
                        join_path("", e.path()),
                        e.inner().message(),
                        None,
                    ));
                }
                return Err(ConfigErrors::new(errors));
            }
        };
    config.assign_edge_ips();
    config.validate().map_err(|mut e| {
        for err in &mut e.errors {
            err.line = index.line_of(&err.key);
        }
        // A person reads them top to bottom (stable: same line keeps rule order).
        e.errors.sort_by_key(|err| err.line.unwrap_or(u32::MAX));
        e
    })?;
    Ok(config)
}

/// Deserializes a JSON body (a whole [`Config`], a [`SpectrumApp`], a [`Binding`], ...) with
/// an error that names the key path and line. Does not validate.
///
/// # Errors
/// [`ConfigErrors`] with the first problem: [`Rule::Syntax`] for malformed JSON, otherwise
/// [`Rule::UnknownKey`], [`Rule::MissingKey`] or [`Rule::InvalidValue`].
pub fn parse_json<T: DeserializeOwned>(src: &str) -> Result<T, ConfigErrors> {
    let json_error = |key: String, inner: &serde_json::Error| {
        // serde_json appends " at line L column C"; the line has its own field.
        let msg = inner.to_string();
        let msg = msg
            .rsplit_once(" at line ")
            .map_or(&msg[..], |(m, _)| m)
            .to_string();
        let mut err = if inner.is_syntax() || inner.is_eof() {
            ConfigError::new(Rule::Syntax, "", None, format!("JSON syntax: {msg}"))
        } else {
            shape_error(key, &msg, None)
        };
        err.line = u32::try_from(inner.line()).ok().filter(|&l| l > 0);
        ConfigErrors::new(vec![err])
    };
    let mut de = serde_json::Deserializer::from_str(src);
    let v: T = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| json_error(join_path("", e.path()), e.inner()))?;
    de.end().map_err(|e| json_error(String::new(), &e))?;
    Ok(v)
}
