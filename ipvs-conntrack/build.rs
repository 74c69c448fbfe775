//! Build script: with the `nightly-prefetch` feature, checks that the compiler offers
//! `core::hint::prefetch_read` (unstable, nightly only) and turns on the read-ahead of
//! offline decoding (`cfg(ipvsct_prefetch)`); on a compiler without it the feature does
//! nothing and says so.

fn main() {
    autocfg::emit_possibility("ipvsct_prefetch");
    autocfg::rerun_env("CARGO_FEATURE_NIGHTLY_PREFETCH");
    if std::env::var_os("CARGO_FEATURE_NIGHTLY_PREFETCH").is_none() {
        return;
    }
    const PROBE: &str = "#![feature(hint_prefetch)]\n\
        pub fn probe(p: *const u8) { core::hint::prefetch_read(p, core::hint::Locality::L1) }\n";
    match autocfg::AutoCfg::new().map(|ac| ac.probe_raw(PROBE)) {
        Ok(Ok(())) => autocfg::emit("ipvsct_prefetch"),
        _ => println!(
            "cargo:warning=ipvs-conntrack: feature nightly-prefetch needs a nightly compiler \
             with core::hint::prefetch_read; building without read-ahead"
        ),
    }
}
