//! `-o` mount options, as given on the command line and by `mount.fuse3`
//! from `/etc/fstab`: comma-separated, generic FUSE and mount options plus
//! packagefs's own `layers=`, `cache_size=`, `generation=`,
//! `shine_through=` (names separated by `:`, since `,` separates options),
//! `exec_cache=DIR`, `exec_cache_size=BYTES` and `no_index_cache`.
//! Kernel flags come out as [`MountFlag`]s, which the mount code
//! ([`crate::kmount`], [`crate::fuse`]) translates for the kernel or fuser.

use crate::shine::{self, ShineError};
use state::plan::source::parse_layers;
use state::plan::{GenerationChoice, SourceError};
use state::Layer;

/// What the `-o` options asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// `allow_other`.
    pub allow_other: bool,
    /// `allow_root`.
    pub allow_root: bool,
    /// `fsname=`.
    pub fsname: Option<String>,
    /// Kernel mount flags (`nosuid`, `nodev`, `noexec`, `noatime`, ...).
    pub flags: Vec<MountFlag>,
    /// `layers=system:common:user` (`:` or `+` separated).
    pub layers: Option<Vec<Layer>>,
    /// `cache_size=BYTES`.
    pub cache_size: Option<u64>,
    /// `generation=N|previous`: mount that generation of a root with state,
    /// read-only and not followed live.
    pub generation: Option<GenerationChoice>,
    /// `shine_through=var:tmp:run`: top-level directories where the root's
    /// `data/<name>` shows through (see [`crate::shine`]).
    pub shine_through: Option<Vec<String>>,
    /// `entry_ttl=SECONDS`: how long the kernel may cache entries and
    /// attributes (default [`crate::fuse::DEFAULT_TTL`]).
    pub entry_ttl: Option<std::time::Duration>,
    /// `exec_cache=DIR`: the exec cache directory (see
    /// [`crate::exec_cache`]).
    pub exec_cache: Option<std::path::PathBuf>,
    /// `exec_cache_size=BYTES`: the bound of the exec cache.
    pub exec_cache_size: Option<u64>,
    /// `no_index_cache`: parse every package instead of opening it from its
    /// index image (`--no-index-cache`).
    pub no_index_cache: bool,
}

/// A kernel mount flag that `-o` may set; the mount is always read-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountFlag {
    /// `suid`: honour set-user-id and set-group-id bits.
    Suid,
    /// `nosuid` (the default).
    NoSuid,
    /// `dev`: let device files work.
    Dev,
    /// `nodev` (the default).
    NoDev,
    /// `exec` (the default).
    Exec,
    /// `noexec`: refuse to execute files.
    NoExec,
    /// `noatime`.
    NoAtime,
}

impl MountFlag {
    /// The flag that undoes this one, if any.
    pub fn opposite(self) -> Option<MountFlag> {
        match self {
            MountFlag::Suid => Some(MountFlag::NoSuid),
            MountFlag::NoSuid => Some(MountFlag::Suid),
            MountFlag::Dev => Some(MountFlag::NoDev),
            MountFlag::NoDev => Some(MountFlag::Dev),
            MountFlag::Exec => Some(MountFlag::NoExec),
            MountFlag::NoExec => Some(MountFlag::Exec),
            MountFlag::NoAtime => None,
        }
    }
}

/// A bad `-o` option.
#[derive(Debug, thiserror::Error)]
pub enum OptionError {
    /// An option packagefs does not know.
    #[error("unknown mount option {0:?}")]
    Unknown(String),
    /// A bad size.
    #[error("bad size {0:?} (expected bytes, optionally with K, M or G)")]
    Size(String),
    /// A bad layer list or generation.
    #[error(transparent)]
    Layers(#[from] SourceError),
    /// A bad number of seconds.
    #[error("bad entry_ttl {0:?} (expected whole seconds)")]
    Seconds(String),
    /// A bad shine-through list.
    #[error(transparent)]
    Shine(#[from] ShineError),
}

impl MountOptions {
    /// Add the options of one `-o` argument.
    pub fn parse_into(&mut self, text: &str) -> Result<(), OptionError> {
        for opt in text.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let (key, value) = match opt.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (opt, None),
            };
            let flag = match (key, value) {
                ("allow_other", None) => {
                    self.allow_other = true;
                    None
                }
                ("allow_root", None) => {
                    self.allow_root = true;
                    None
                }
                ("fsname", Some(v)) => {
                    self.fsname = Some(v.to_string());
                    None
                }
                ("layers", Some(v)) => {
                    self.layers = Some(parse_layers(v)?);
                    None
                }
                ("generation", Some(v)) => {
                    self.generation = Some(v.parse()?);
                    None
                }
                ("shine_through", Some(v)) => {
                    self.shine_through = Some(shine::parse_list(v, ':')?);
                    None
                }
                ("entry_ttl", Some(v)) => {
                    let secs: u64 = v.parse().map_err(|_| OptionError::Seconds(v.to_string()))?;
                    self.entry_ttl = Some(std::time::Duration::from_secs(secs));
                    None
                }
                ("cache_size", Some(v)) => {
                    self.cache_size = Some(parse_size(v)?);
                    None
                }
                ("exec_cache", Some(v)) if !v.is_empty() => {
                    self.exec_cache = Some(v.into());
                    None
                }
                ("exec_cache_size", Some(v)) => {
                    self.exec_cache_size = Some(parse_size(v)?);
                    None
                }
                ("no_index_cache", None) => {
                    self.no_index_cache = true;
                    None
                }
                ("nosuid", None) => Some(MountFlag::NoSuid),
                ("suid", None) => Some(MountFlag::Suid),
                ("nodev", None) => Some(MountFlag::NoDev),
                ("dev", None) => Some(MountFlag::Dev),
                ("noexec", None) => Some(MountFlag::NoExec),
                ("exec", None) => Some(MountFlag::Exec),
                ("noatime", None) => Some(MountFlag::NoAtime),
                // Always read-only, always default_permissions; times never
                // change; options for mount(8) itself, not the file system.
                (
                    "ro"
                    | "rw"
                    | "default_permissions"
                    | "atime"
                    | "relatime"
                    | "strictatime"
                    | "nodiratime"
                    | "diratime"
                    | "lazytime"
                    | "sync"
                    | "async"
                    | "dirsync"
                    | "defaults"
                    | "auto"
                    | "noauto"
                    | "user"
                    | "users"
                    | "nouser"
                    | "owner"
                    | "group"
                    | "nofail"
                    | "_netdev",
                    None,
                )
                | ("subtype" | "comment", Some(_)) => None,
                (k, _) if k.starts_with("x-") => None,
                _ => return Err(OptionError::Unknown(opt.to_string())),
            };
            if let Some(f) = flag {
                // The last of two opposite flags wins, as with mount(8).
                let opposite = f.opposite();
                self.flags.retain(|&g| Some(g) != opposite && g != f);
                self.flags.push(f);
            }
        }
        Ok(())
    }
}

/// Parse a byte count: `268435456`, `256M`, `256MiB`, `1G`, `512k`.
pub fn parse_size(text: &str) -> Result<u64, OptionError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| OptionError::Size(text.to_string()))?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(OptionError::Size(text.to_string())),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| OptionError::Size(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fstab_options_parse() {
        let mut o = MountOptions::default();
        o.parse_into("rw,nosuid,nodev,allow_other,layers=system:user,cache_size=64M,x-systemd.automount,fsname=root")
            .unwrap();
        assert!(o.allow_other);
        assert_eq!(o.layers, Some(vec![Layer::System, Layer::User]));
        assert_eq!(o.cache_size, Some(64 << 20));
        assert_eq!(o.fsname.as_deref(), Some("root"));
        assert_eq!(o.flags, vec![MountFlag::NoSuid, MountFlag::NoDev]);
        assert_eq!(o.generation, None);
        o.parse_into("generation=previous").unwrap();
        assert_eq!(o.generation, Some(GenerationChoice::Previous));
        o.parse_into("generation=7").unwrap();
        assert_eq!(o.generation, Some(GenerationChoice::Number(7)));
        assert!(o.parse_into("generation=seven").is_err());
        o.parse_into(
            "ro,shine_through=var:tmp:run,noauto,user,_netdev,x-systemd.requires=a.mount,defaults",
        )
        .unwrap();
        assert_eq!(
            o.shine_through,
            Some(vec![
                "var".to_string(),
                "tmp".to_string(),
                "run".to_string()
            ])
        );
        assert!(o.parse_into("shine_through=var:..").is_err());
        assert!(o.parse_into("shine_through=var:var").is_err());
        o.parse_into("entry_ttl=2").unwrap();
        assert_eq!(o.entry_ttl, Some(std::time::Duration::from_secs(2)));
        assert!(o.parse_into("entry_ttl=soon").is_err());
        o.parse_into("exec_cache=/var/cache/exec,exec_cache_size=2G")
            .unwrap();
        assert_eq!(o.exec_cache, Some("/var/cache/exec".into()));
        assert_eq!(o.exec_cache_size, Some(2 << 30));
        assert!(o.parse_into("exec_cache=").is_err());
        assert!(o.parse_into("exec_cache_size=big").is_err());
        assert!(!o.no_index_cache);
        o.parse_into("no_index_cache").unwrap();
        assert!(o.no_index_cache);
        assert!(o.parse_into("no_index_cache=yes").is_err());
        o.parse_into("suid").unwrap();
        assert_eq!(o.flags, vec![MountFlag::NoDev, MountFlag::Suid]);
    }

    #[test]
    fn unknown_options_are_refused() {
        let mut o = MountOptions::default();
        assert!(matches!(
            o.parse_into("allow_other,frobnicate"),
            Err(OptionError::Unknown(s)) if s == "frobnicate"
        ));
        assert!(o.parse_into("layers=usr").is_err());
        assert!(o.parse_into("cache_size=lots").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("1k").unwrap(), 1024);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999999G").is_err());
    }
}
