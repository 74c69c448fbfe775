//! Gives the shared library its soname (`libipvsct.so.<major>`); the header is not generated here
//! (see `tests/c/check-header.sh` and `make -C ffi header`).

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libipvsct.so.{major}");
    println!("cargo:rerun-if-changed=build.rs");
}
