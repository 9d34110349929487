//! `fp_trace!`: tracing that compiles to nothing unless the `trace` feature is on (smoltcp's
//! `net_trace!`). Never per packet in release builds.

#[cfg(feature = "trace")]
macro_rules! fp_trace {
    ($($arg:expr),* $(,)?) => {{
        #[allow(clippy::print_stderr)]
        {
            eprintln!($($arg),*);
        }
    }};
}

#[cfg(not(feature = "trace"))]
macro_rules! fp_trace {
    ($($arg:expr),* $(,)?) => {{
        $( let _ = &$arg; )*
    }};
}
