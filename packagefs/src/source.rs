//! What to mount: which package files, in which layer, in which order, and
//! who owns their nodes.
//!
//! A mount is given either one package ROOT directory or one or more `.hpkg`
//! files. [`resolve`] turns that into one list of [`SourcePackage`]s in
//! ascending priority: the union tree lets a later package win over an
//! earlier one. This is the single place that decides "which packages, in
//! which order, in which layer"; the `state` crate's `active.list` will plug
//! in here.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use std::os::unix::fs::MetadataExt;

/// A layer of a package root, lowest priority first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    /// `ROOT/system/packages`: the base system, root-owned.
    System,
    /// `ROOT/common/packages`: shared optional packages, root-owned.
    Common,
    /// `ROOT/user/packages`: per-user packages, owned by the owner of that
    /// directory, never setuid/setgid.
    User,
}

impl Layer {
    /// All layers, lowest priority first.
    pub const ALL: [Layer; 3] = [Layer::System, Layer::Common, Layer::User];

    /// The layer's directory name under the root.
    pub fn name(self) -> &'static str {
        match self {
            Layer::System => "system",
            Layer::Common => "common",
            Layer::User => "user",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Layer {
    type Err = SourceError;
    fn from_str(s: &str) -> Result<Layer, SourceError> {
        match s {
            "system" => Ok(Layer::System),
            "common" => Ok(Layer::Common),
            "user" => Ok(Layer::User),
            other => Err(SourceError::UnknownLayer(other.to_string())),
        }
    }
}

/// Parse a comma-, colon- or plus-separated list of layer names (`system,user`).
pub fn parse_layers(text: &str) -> Result<Vec<Layer>, SourceError> {
    let mut layers: Vec<Layer> = text
        .split([',', ':', '+'])
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    if layers.is_empty() {
        return Err(SourceError::UnknownLayer(text.to_string()));
    }
    layers.sort();
    layers.dedup();
    Ok(layers)
}

/// What the command line asked to mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    /// A package root with its layers.
    Root {
        /// The root directory.
        root: PathBuf,
        /// Layers to mount (any order; mounted lowest priority first).
        layers: Vec<Layer>,
    },
    /// Package files, mounted on their own, later ones winning.
    Files(Vec<PathBuf>),
}

impl MountSpec {
    /// Classify the sources given on the command line: one directory is a
    /// root, anything else must be package files.
    pub fn from_sources(sources: &[PathBuf], layers: &[Layer]) -> Result<MountSpec, SourceError> {
        match sources {
            [] => Err(SourceError::NothingToMount),
            [one] if one.is_dir() => Ok(MountSpec::Root {
                root: one.clone(),
                layers: if layers.is_empty() {
                    Layer::ALL.to_vec()
                } else {
                    layers.to_vec()
                },
            }),
            many => {
                for p in many {
                    if p.is_dir() {
                        return Err(SourceError::MixedSources(p.clone()));
                    }
                    if !p.is_file() {
                        return Err(SourceError::Missing(p.clone()));
                    }
                }
                Ok(MountSpec::Files(many.to_vec()))
            }
        }
    }
}

/// One package file to activate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePackage {
    /// The package file.
    pub path: PathBuf,
    /// Its layer; `None` for a package file mounted on its own.
    pub layer: Option<Layer>,
    /// Owner shown for its nodes.
    pub uid: u32,
    /// Group shown for its nodes.
    pub gid: u32,
    /// Whether setuid/setgid bits are stripped from its nodes.
    pub strip_setid: bool,
}

/// Why the packages to mount could not be found.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// No source was named.
    #[error("nothing to mount: name a package root or package files")]
    NothingToMount,
    /// A directory given together with other sources.
    #[error("{}: a package root must be the only source", .0.display())]
    MixedSources(PathBuf),
    /// A source that does not exist.
    #[error("{}: no such package file or root directory", .0.display())]
    Missing(PathBuf),
    /// A layer name that is not system, common or user.
    #[error("unknown layer {0:?} (expected system, common, user)")]
    UnknownLayer(String),
    /// A directory that could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// The packages to activate, lowest priority first.
///
/// A root mounts, for each chosen layer from system to user, every `*.hpkg`
/// in `ROOT/<layer>/packages/` in file-name (byte) order; a missing layer
/// directory contributes nothing. Package files mount in the order given.
pub fn resolve(spec: &MountSpec) -> Result<Vec<SourcePackage>, SourceError> {
    match spec {
        MountSpec::Files(files) => Ok(files
            .iter()
            .map(|path| SourcePackage {
                path: path.clone(),
                layer: None,
                uid: 0,
                gid: 0,
                strip_setid: false,
            })
            .collect()),
        MountSpec::Root { root, layers } => {
            let mut layers = layers.clone();
            layers.sort();
            layers.dedup();
            let mut out = Vec::new();
            for layer in layers {
                let dir = root.join(layer.name()).join("packages");
                let (uid, gid) = match layer {
                    Layer::User => match std::fs::metadata(&dir) {
                        Ok(m) => (m.uid(), m.gid()),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(source) => return Err(SourceError::Io { path: dir, source }),
                    },
                    _ => (0, 0),
                };
                for path in package_files(&dir)? {
                    out.push(SourcePackage {
                        path,
                        layer: Some(layer),
                        uid,
                        gid,
                        strip_setid: layer == Layer::User,
                    });
                }
            }
            Ok(out)
        }
    }
}

/// The `*.hpkg` files of a packages directory in file-name order (empty if
/// the directory does not exist).
fn package_files(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let io = |source| SourceError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "hpkg") && !entry.file_name().is_empty() {
            let is_file = std::fs::metadata(&path)
                .map(|m| m.is_file())
                .unwrap_or(false);
            if is_file {
                files.push(path);
            }
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_parse_and_sort() {
        assert_eq!(
            parse_layers("user,system").unwrap(),
            vec![Layer::System, Layer::User]
        );
        assert_eq!(parse_layers("common:user").unwrap().len(), 2);
        assert!(parse_layers("usr").is_err());
        assert!(parse_layers("").is_err());
    }

    #[test]
    fn root_lists_layers_in_priority_and_name_order() {
        let dir = tempfile::tempdir().unwrap();
        for (layer, names) in [
            ("user", &["b.hpkg", "a.hpkg"][..]),
            ("system", &["z.hpkg", "m.hpkg", "notes.txt"][..]),
        ] {
            let d = dir.path().join(layer).join("packages");
            std::fs::create_dir_all(&d).unwrap();
            for n in names {
                std::fs::write(d.join(n), b"x").unwrap();
            }
        }
        let spec = MountSpec::from_sources(&[dir.path().to_path_buf()], &[]).unwrap();
        let got = resolve(&spec).unwrap();
        let names: Vec<_> = got
            .iter()
            .map(|p| {
                (
                    p.layer.unwrap(),
                    p.path.file_name().unwrap().to_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                (Layer::System, "m.hpkg".to_string()),
                (Layer::System, "z.hpkg".to_string()),
                (Layer::User, "a.hpkg".to_string()),
                (Layer::User, "b.hpkg".to_string()),
            ]
        );
        assert!(got[0].uid == 0 && !got[0].strip_setid);
        assert!(got[2].strip_setid);
    }

    #[test]
    fn mixing_a_root_with_files_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.hpkg");
        std::fs::write(&f, b"x").unwrap();
        assert!(matches!(
            MountSpec::from_sources(&[f, dir.path().to_path_buf()], &[]),
            Err(SourceError::MixedSources(_))
        ));
    }
}
