//! What the XDP program's tests share.

/// Whether the test may load BPF programs (root). Otherwise it says so loudly and the test
/// returns, unless `FASTPATH_REQUIRE_PRIVILEGED=1` (CI), which makes the skip a failure.
pub fn privileged(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        return true;
    }
    let msg = format!("SKIPPED {test}: needs root to load BPF programs");
    assert!(
        std::env::var("FASTPATH_REQUIRE_PRIVILEGED").as_deref() != Ok("1"),
        "{msg} (FASTPATH_REQUIRE_PRIVILEGED=1)"
    );
    // Straight to the stderr stream: the test harness captures `eprintln!` of passing tests,
    // and a skip must be seen.
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "\n!!!!!!!! {msg} !!!!!!!!\n");
    false
}
