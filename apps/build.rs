//! Shared build script of the Rust apps: links each one as a static, non-PIE executable at a
//! fixed address, with the app's own `link.ld` when it has one, else `apps/link.ld`.
//!
//! The pager loads an app by its program headers and applies no relocations (docs/app-abi.md),
//! so the output must be `ET_EXEC` with page-separated `PT_LOAD` segments. The target's code is
//! position independent, which is harmless at a fixed address; only the link step changes.

use std::path::Path;

fn main() {
    let package = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let own_script = Path::new(&package).join("link.ld");
    let script = if own_script.exists() { own_script } else { Path::new(&package).join("../link.ld") };
    println!("cargo:rerun-if-changed={}", script.display());
    // Host builds are stubs (see the app runtime's `entry!`); only the pager's target is linked
    // with the script.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
        // The target defaults to static PIE; the pager wants a plain executable.
        println!("cargo:rustc-link-arg-bins=--no-pie");
        println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
    }
}
