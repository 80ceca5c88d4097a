//! Attribute ids, data types and encodings of the HPKG attribute tree
//! (`docs/hpkg-format.md` §6, §7).

/// Data type of an attribute value (3 bits of the tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum AttrType {
    /// Signed integer.
    Int = 1,
    /// Unsigned integer.
    UInt = 2,
    /// String (inline or string-table).
    String = 3,
    /// Raw bytes (inline or on the heap).
    Raw = 4,
}

impl AttrType {
    /// The type for a raw 3-bit type code, if it is a valid one.
    pub fn from_code(code: u8) -> Option<AttrType> {
        match code {
            1 => Some(AttrType::Int),
            2 => Some(AttrType::UInt),
            3 => Some(AttrType::String),
            4 => Some(AttrType::Raw),
            _ => None,
        }
    }
}

macro_rules! ids {
    ($( $(#[$doc:meta])* $konst:ident = $id:literal, $name:literal, $ty:ident; )*) => {
        $( $(#[$doc])* pub const $konst: u8 = $id; )*

        /// The name string of a known attribute id (as Haiku prints it).
        pub fn name(id: u8) -> Option<&'static str> {
            match id { $( $id => Some($name), )* _ => None }
        }

        /// The data type a known attribute id must have.
        pub fn expected_type(id: u8) -> Option<AttrType> {
            match id { $( $id => Some(AttrType::$ty), )* _ => None }
        }
    };
}

ids! {
    /// `dir:entry`: an entry of the archive; value = name.
    DIR_ENTRY = 0, "dir:entry", String;
    /// `file:type`: 0 file, 1 directory, 2 symlink.
    FILE_TYPE = 1, "file:type", UInt;
    /// `file:permissions`: mode bits.
    FILE_PERMISSIONS = 2, "file:permissions", UInt;
    /// `file:user` (ignored).
    FILE_USER = 3, "file:user", String;
    /// `file:group` (ignored).
    FILE_GROUP = 4, "file:group", String;
    /// `file:atime`, seconds.
    FILE_ATIME = 5, "file:atime", UInt;
    /// `file:mtime`, seconds.
    FILE_MTIME = 6, "file:mtime", UInt;
    /// `file:crtime`, seconds.
    FILE_CRTIME = 7, "file:crtime", UInt;
    /// `file:atime:nanos`.
    FILE_ATIME_NANOS = 8, "file:atime:nanos", UInt;
    /// `file:mtime:nanos`.
    FILE_MTIME_NANOS = 9, "file:mtime:nanos", UInt;
    /// `file:crtime:nanos`.
    FILE_CRTIME_NANOS = 10, "file:crtime:nanos", UInt;
    /// `file:attribute`: an extended attribute; value = its name.
    FILE_ATTRIBUTE = 11, "file:attribute", String;
    /// `file:attribute:type`: 32-bit Haiku type code.
    FILE_ATTRIBUTE_TYPE = 12, "file:attribute:type", UInt;
    /// `data`: file or attribute payload.
    DATA = 13, "data", Raw;
    /// `symlink:path`: link target.
    SYMLINK_PATH = 14, "symlink:path", String;
    /// `package:name`.
    PACKAGE_NAME = 15, "package:name", String;
    /// `package:summary`.
    PACKAGE_SUMMARY = 16, "package:summary", String;
    /// `package:description`.
    PACKAGE_DESCRIPTION = 17, "package:description", String;
    /// `package:vendor`.
    PACKAGE_VENDOR = 18, "package:vendor", String;
    /// `package:packager`.
    PACKAGE_PACKAGER = 19, "package:packager", String;
    /// `package:flags`.
    PACKAGE_FLAGS = 20, "package:flags", UInt;
    /// `package:architecture`.
    PACKAGE_ARCHITECTURE = 21, "package:architecture", UInt;
    /// `package:version.major`.
    VERSION_MAJOR = 22, "package:version.major", String;
    /// `package:version.minor`.
    VERSION_MINOR = 23, "package:version.minor", String;
    /// `package:version.micro`.
    VERSION_MICRO = 24, "package:version.micro", String;
    /// `package:version.revision`.
    VERSION_REVISION = 25, "package:version.revision", UInt;
    /// `package:copyright`.
    PACKAGE_COPYRIGHT = 26, "package:copyright", String;
    /// `package:license`.
    PACKAGE_LICENSE = 27, "package:license", String;
    /// `package:provides`.
    PACKAGE_PROVIDES = 28, "package:provides", String;
    /// `package:requires`.
    PACKAGE_REQUIRES = 29, "package:requires", String;
    /// `package:supplements`.
    PACKAGE_SUPPLEMENTS = 30, "package:supplements", String;
    /// `package:conflicts`.
    PACKAGE_CONFLICTS = 31, "package:conflicts", String;
    /// `package:freshens`.
    PACKAGE_FRESHENS = 32, "package:freshens", String;
    /// `package:replaces`.
    PACKAGE_REPLACES = 33, "package:replaces", String;
    /// `package:resolvable.operator`.
    RESOLVABLE_OPERATOR = 34, "package:resolvable.operator", UInt;
    /// `package:checksum`.
    PACKAGE_CHECKSUM = 35, "package:checksum", String;
    /// `package:version.prerelease`.
    VERSION_PRERELEASE = 36, "package:version.prerelease", String;
    /// `package:provides.compatible`.
    PROVIDES_COMPATIBLE = 37, "package:provides.compatible", String;
    /// `package:url`.
    PACKAGE_URL = 38, "package:url", String;
    /// `package:source-url`.
    PACKAGE_SOURCE_URL = 39, "package:source-url", String;
    /// `package:install-path`.
    PACKAGE_INSTALL_PATH = 40, "package:install-path", String;
    /// `package:base-package`.
    PACKAGE_BASE_PACKAGE = 41, "package:base-package", String;
    /// `package:global-writable-file`.
    PACKAGE_GLOBAL_WRITABLE_FILE = 42, "package:global-writable-file", String;
    /// `package:user-settings-file`.
    PACKAGE_USER_SETTINGS_FILE = 43, "package:user-settings-file", String;
    /// `package:writable-file-update-type`.
    WRITABLE_FILE_UPDATE_TYPE = 44, "package:writable-file-update-type", UInt;
    /// `package:settings-file-template`.
    SETTINGS_FILE_TEMPLATE = 45, "package:settings-file-template", String;
    /// `package:user`.
    PACKAGE_USER = 46, "package:user", String;
    /// `package:user.real-name`.
    USER_REAL_NAME = 47, "package:user.real-name", String;
    /// `package:user.home`.
    USER_HOME = 48, "package:user.home", String;
    /// `package:user.shell`.
    USER_SHELL = 49, "package:user.shell", String;
    /// `package:user.group`.
    USER_GROUP = 50, "package:user.group", String;
    /// `package:group`.
    PACKAGE_GROUP = 51, "package:group", String;
    /// `package:post-install-script`.
    PACKAGE_POST_INSTALL_SCRIPT = 52, "package:post-install-script", String;
    /// `package:is-writable-directory`.
    IS_WRITABLE_DIRECTORY = 53, "package:is-writable-directory", UInt;
    /// `package` (HPKR top level).
    PACKAGE = 54, "package", String;
    /// `package:pre-uninstall-script`.
    PACKAGE_PRE_UNINSTALL_SCRIPT = 55, "package:pre-uninstall-script", String;
}

/// The highest attribute id this implementation knows.
pub const LAST_KNOWN_ID: u8 = PACKAGE_PRE_UNINSTALL_SCRIPT;

/// The minor format version this implementation reads and writes.
pub const READER_MINOR_VERSION: u16 = 1;
