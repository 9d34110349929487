//! The config loader never panics on any text; whatever it accepts compiles, builds tables, and
//! survives a TOML round trip. JSON app bodies never panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(c) = control::config::Config::from_toml_str(text) {
        let compiled = c.compile(1, &Default::default()).expect("a loaded config compiles");
        fastpath::tables::Tables::build(&compiled.spec).expect("a loaded config builds tables");
        let again = control::config::Config::from_toml_str(&c.to_toml_string().expect("serializes")).expect("round trip");
        assert_eq!(again, c);
    }
    let _ = serde_json::from_str::<control::config::SpectrumApp>(text);
});
