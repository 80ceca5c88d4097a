//! Fuzz target `section`: see [`hpkg_format_fuzz::section`].

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hpkg_format_fuzz::section(data));
