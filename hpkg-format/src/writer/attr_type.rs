//! Haiku type codes for file attributes that come from Linux extended
//! attributes, which carry no type.
//!
//! Haiku stores a 32-bit type code with every file attribute; a Linux
//! `user.*` extended attribute is only a name and bytes. The type is
//! recovered without any side channel:
//!
//! 1. well-known Haiku attribute names get the type Haiku gives them
//!    (`BEOS:TYPE` is a MIME string `MIMS`, `BEOS:ICON` a vector icon
//!    `VICN`, …);
//! 2. otherwise a value that is a C string — valid UTF-8 ending in its only
//!    NUL byte — is `CSTR` (`B_STRING_TYPE`);
//! 3. anything else is `RAWT` (`B_RAW_TYPE`).
//!
//! This reproduces the types of every attribute in the golden packages
//! except integers and booleans (`LONG`, `LLNG`, `BOOL`, …), whose bytes do
//! not say what they are: those come back as `RAWT`. Their bytes are kept
//! exactly, so only the type code is lost.

/// `B_RAW_TYPE` ('RAWT').
pub const RAW_TYPE: u32 = u32::from_be_bytes(*b"RAWT");
/// `B_STRING_TYPE` ('CSTR').
pub const STRING_TYPE: u32 = u32::from_be_bytes(*b"CSTR");

/// Attribute names whose Haiku type is fixed.
const KNOWN: &[(&str, [u8; 4])] = &[
    ("BEOS:TYPE", *b"MIMS"),
    ("BEOS:APP_SIG", *b"MIMS"),
    ("BEOS:PREF_APP", *b"MIMS"),
    ("BEOS:ICON", *b"VICN"),
    ("BEOS:L:STD_ICON", *b"ICON"),
    ("BEOS:M:STD_ICON", *b"MICN"),
    ("BEOS:APP_FLAGS", *b"APPF"),
    ("BEOS:APP_VERSION", *b"APPV"),
    ("BEOS:FILE_TYPES", *b"MSGG"),
    ("META:ICON", *b"VICN"),
    ("META:L:STD_ICON", *b"ICON"),
    ("META:M:STD_ICON", *b"MICN"),
    ("META:S:DESC", *b"MSDC"),
    ("META:L:DESC", *b"MLDC"),
    ("META:PREF_APP", *b"MSIG"),
    ("META:PPATH", *b"MPTH"),
    ("META:EXTENS", *b"MSGG"),
    ("META:ATTR_INFO", *b"MSGG"),
];

/// The Haiku type code for an attribute named `name` holding `value`.
pub fn infer(name: &[u8], value: &[u8]) -> u32 {
    if let Some((_, code)) = KNOWN.iter().find(|(n, _)| n.as_bytes() == name) {
        return u32::from_be_bytes(*code);
    }
    match value.split_last() {
        Some((0, text)) if !text.contains(&0) && std::str::from_utf8(text).is_ok() => STRING_TYPE,
        _ => RAW_TYPE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &[u8; 4]) -> u32 {
        u32::from_be_bytes(*s)
    }

    #[test]
    fn known_names_strings_and_raw() {
        assert_eq!(infer(b"BEOS:TYPE", b"text/plain\0"), code(b"MIMS"));
        assert_eq!(infer(b"BEOS:ICON", &[1, 2, 3]), code(b"VICN"));
        assert_eq!(infer(b"ref:string", b"hello\0"), STRING_TYPE);
        assert_eq!(infer(b"x", "ünïcödé\0".as_bytes()), STRING_TYPE);
        assert_eq!(infer(b"x", b"\0"), STRING_TYPE);
        assert_eq!(infer(b"x", b""), RAW_TYPE);
        assert_eq!(infer(b"x", b"no nul"), RAW_TYPE);
        assert_eq!(infer(b"x", b"a\0b\0"), RAW_TYPE);
        assert_eq!(infer(b"x", &[0x39, 0x30, 0, 0]), RAW_TYPE);
        assert_eq!(infer(b"x", &[0xff, 0xfe, 0]), RAW_TYPE);
    }
}
