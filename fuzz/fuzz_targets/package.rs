//! Fuzz target `package`: see [`hpkg_format_fuzz::package`].

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hpkg_format_fuzz::package(data));
