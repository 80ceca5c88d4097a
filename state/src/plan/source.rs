//! What to mount: which package files, in which layer, in which order, and
//! who owns their nodes.
//!
//! A mount is given either one package ROOT directory or one or more `.hpkg`
//! files. [`resolve`] turns that into one list of [`SourcePackage`]s in
//! ascending priority: the union tree lets a later package win over an
//! earlier one. This is the single place that decides "which packages, in
//! which order, in which layer".
//!
//! A root with state (`ROOT/system/state/` holding `active.list` or a
//! generation file) mounts the packages of a generation — the one in force
//! (`active.list`, or the newest valid generation file when it is corrupt,
//! with loud warnings), or one chosen with [`GenerationChoice`] — layer by
//! layer (system, common, user), inside a layer in the generation's
//! (activation) order, each from its packages directory or the store, and
//! hides the paths listed in `system/state/blocked-entries`. The layer
//! decides first, whatever order the packages were activated in. A root without state mounts
//! every `*.hpkg` of its layers' `packages/` directories in file-name order.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use std::os::unix::fs::MetadataExt;

use crate::layout::Layer;

/// Parse a comma-, colon- or plus-separated list of layer names (`system,user`).
pub fn parse_layers(text: &str) -> Result<Vec<Layer>, SourceError> {
    let mut layers: Vec<Layer> = text
        .split([',', ':', '+'])
        .filter(|s| !s.is_empty())
        .map(|name| Layer::parse(name).ok_or_else(|| SourceError::UnknownLayer(name.to_string())))
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
    /// The package root, if this is one.
    pub fn root(&self) -> Option<&Path> {
        match self {
            MountSpec::Root { root, .. } => Some(root),
            MountSpec::Files(_) => None,
        }
    }

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
    /// Whether it may replace paths of lower layers (the trust policy's
    /// `may-shadow`; by default not for a layer whose packages directory is
    /// not owned by root): a package that may not still adds paths and
    /// entries to lower directories, but its file (or its directory over a
    /// lower file) is refused where a lower layer has the path.
    pub may_shadow: bool,
    /// The size and blake3 the generation recorded for the file (`None` for
    /// a package file mounted on its own, or a packages directory read
    /// without a generation): what content caches are keyed by.
    pub recorded: Option<(u64, crate::Digest)>,
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
    /// The root's state (generations) could not be read.
    #[error("package root state: {0}")]
    State(#[from] crate::error::Error),
    /// `--generation` asked of something that is not a root with state.
    #[error("{0}: only a package root with a state directory (system/state) has generations")]
    NoGenerations(String),
    /// `previous` asked of a generation without a parent.
    #[error("generation {0} has no previous generation")]
    NoPrevious(u64),
    /// A bad `--generation` value.
    #[error("bad generation {0:?} (expected a number or `previous`)")]
    BadGeneration(String),
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

/// Which generation of a root with state to mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GenerationChoice {
    /// The generation in force (the only one followed live).
    #[default]
    Current,
    /// Generation `n`, read-only.
    Number(u64),
    /// The parent of the generation in force, read-only.
    Previous,
}

impl FromStr for GenerationChoice {
    type Err = SourceError;
    fn from_str(s: &str) -> Result<GenerationChoice, SourceError> {
        match s.trim() {
            "previous" | "prev" => Ok(GenerationChoice::Previous),
            "current" => Ok(GenerationChoice::Current),
            n => n
                .parse()
                .map(GenerationChoice::Number)
                .map_err(|_| SourceError::BadGeneration(s.to_string())),
        }
    }
}

/// What [`resolve_with`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Packages to open, lowest priority first: layer by layer, inside a
    /// layer in activation order. From a generation these are all of its
    /// packages, whatever the chosen layers: dependencies are decided over
    /// the whole generation, then [`Resolved::layers`] filters.
    pub packages: Vec<SourcePackage>,
    /// Layers to show (`None`: every package of `packages`).
    pub layers: Option<Vec<Layer>>,
    /// Paths (relative to the mount root) to hide.
    pub blocked: Vec<String>,
    /// The generation mounted (`None`: a directory scan or package files).
    pub generation: Option<u64>,
    /// Warnings to show loudly (a fallback to an older generation, ...).
    pub warnings: Vec<String>,
    /// Whether packages with unmet requirements are to be left out.
    pub check_dependencies: bool,
    /// The index cache of a root with state (`ROOT/system/state/index`):
    /// its packages open from their index images ([`super::index_cache`]).
    /// `None`: every package is parsed.
    pub index_dir: Option<PathBuf>,
    /// Whether images missing from [`Resolved::index_dir`] are written: not
    /// for an older generation, whose mount changes nothing on disk.
    pub index_writable: bool,
}

impl Resolved {
    /// The packages that pass the layer filter.
    pub fn shown(&self) -> impl Iterator<Item = &SourcePackage> + '_ {
        self.packages.iter().filter(|p| self.layer_shown(p))
    }

    /// Whether `p` passes the layer filter.
    pub fn layer_shown(&self, p: &SourcePackage) -> bool {
        match (&self.layers, p.layer) {
            (Some(layers), Some(l)) => layers.contains(&l),
            _ => true,
        }
    }
}

/// The packages to activate, lowest priority first (the current generation
/// of a root with state, filtered by layer); see [`resolve_with`].
pub fn resolve(spec: &MountSpec) -> Result<Vec<SourcePackage>, SourceError> {
    let r = resolve_with(spec, GenerationChoice::Current)?;
    Ok(r.shown().cloned().collect())
}

/// Whether `root` has state: a `system/state/` directory with an
/// `active.list` or at least one generation file.
pub fn has_state(root: &Path) -> bool {
    open_state(root).is_some()
}

/// The state of `root`, if it has one (see [`has_state`]).
fn open_state(root: &Path) -> Option<crate::root::Root> {
    let r = crate::root::Root::open(root).ok()?;
    let layout = r.layout();
    let has_generations = std::fs::read_dir(layout.generations_dir())
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    (layout.active_list().exists() || has_generations).then_some(r)
}

/// Decide what to mount.
///
/// * Package files mount in the order given.
/// * A root with state (`ROOT/system/state/` with `active.list` or a
///   generation file; see [`has_state`]): the generation chosen
///   by `choice`, its packages in its order, each from
///   `crate::root::Root::resolve_path` (its packages directory, or the store);
///   `blocked-entries` lists paths to hide; requirements are checked.
/// * A root without state: for each chosen layer from system to user, every
///   `*.hpkg` in `ROOT/<layer>/packages/` in file-name (byte) order; a
///   missing layer directory contributes nothing. No generations, no
///   blocked entries, no dependency check.
pub fn resolve_with(spec: &MountSpec, choice: GenerationChoice) -> Result<Resolved, SourceError> {
    match spec {
        MountSpec::Files(files) => {
            if choice != GenerationChoice::Current {
                return Err(SourceError::NoGenerations("package files".into()));
            }
            Ok(Resolved {
                packages: files
                    .iter()
                    .map(|path| SourcePackage {
                        path: path.clone(),
                        layer: None,
                        uid: 0,
                        gid: 0,
                        strip_setid: false,
                        may_shadow: true,
                        recorded: None,
                    })
                    .collect(),
                ..Resolved::default()
            })
        }
        MountSpec::Root { root, layers } => {
            let mut layers = layers.clone();
            layers.sort();
            layers.dedup();
            match open_state(root) {
                Some(state_root) => resolve_generation(&state_root, layers, choice),
                None if choice == GenerationChoice::Current => scan_root(root, layers),
                None => Err(SourceError::NoGenerations(root.display().to_string())),
            }
        }
    }
}

/// Owner of `layer`'s nodes: root, or for the user layer the owner of its
/// packages directory (`None`: that directory is missing).
fn layer_owner(root: &Path, layer: Layer) -> Result<Option<(u32, u32)>, SourceError> {
    match layer {
        Layer::User => {
            let dir = root.join(layer.name()).join("packages");
            match std::fs::metadata(&dir) {
                Ok(m) => Ok(Some((m.uid(), m.gid()))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(SourceError::Io { path: dir, source }),
            }
        }
        _ => Ok(Some((0, 0))),
    }
}

/// The packages of a generation of a root with state.
fn resolve_generation(
    root: &crate::root::Root,
    layers: Vec<Layer>,
    choice: GenerationChoice,
) -> Result<Resolved, SourceError> {
    let loaded = root.current()?;
    let mut warnings = loaded.warnings;
    let generation = match choice {
        GenerationChoice::Current => loaded.generation,
        GenerationChoice::Number(n) => root.generation(n)?,
        GenerationChoice::Previous => {
            let current = loaded.generation.number;
            let parent = loaded
                .generation
                .parent
                .ok_or(SourceError::NoPrevious(current))?;
            root.generation(parent)?
        }
    };
    let blocked = match root.blocked_entries() {
        Ok(b) => b,
        Err(e) => {
            warnings.push(format!("WARNING: blocked entries not applied: {e}"));
            Vec::new()
        }
    };
    let policy = root.policy()?;
    let mut owners = std::collections::HashMap::new();
    let mut packages = Vec::with_capacity(generation.packages.len());
    // Mount order: the layer first, then the activation order (a stable sort).
    let mut in_order: Vec<&crate::active_list::ActivePackage> =
        generation.packages.iter().collect();
    in_order.sort_by_key(|p| p.layer);
    for p in in_order {
        let layer = p.layer;
        let owner = match owners.get(&layer) {
            Some(o) => *o,
            None => {
                let o = layer_owner(root.path(), layer)?.unwrap_or((0, 0));
                owners.insert(layer, o);
                o
            }
        };
        packages.push(SourcePackage {
            path: root.resolve_path(p),
            layer: Some(layer),
            uid: owner.0,
            gid: owner.1,
            strip_setid: layer == Layer::User,
            may_shadow: policy.may_shadow(layer),
            recorded: Some((p.size, p.hash)),
        });
    }
    Ok(Resolved {
        packages,
        layers: Some(layers),
        blocked,
        generation: Some(generation.number),
        warnings,
        check_dependencies: true,
        index_dir: Some(root.layout().index_dir()),
        index_writable: choice == GenerationChoice::Current,
    })
}

/// Every `*.hpkg` of the chosen layers of a root without state.
fn scan_root(root: &Path, layers: Vec<Layer>) -> Result<Resolved, SourceError> {
    let policy = crate::trust::Policy::load(&crate::layout::Layout::new(root))?;
    let mut out = Vec::new();
    for layer in layers {
        let dir = root.join(layer.name()).join("packages");
        let Some((uid, gid)) = layer_owner(root, layer)? else {
            continue;
        };
        for path in package_files(&dir)? {
            out.push(SourcePackage {
                path,
                layer: Some(layer),
                uid,
                gid,
                strip_setid: layer == Layer::User,
                may_shadow: policy.may_shadow(layer),
                recorded: None,
            });
        }
    }
    Ok(Resolved {
        packages: out,
        ..Resolved::default()
    })
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
    fn an_uninitialised_state_directory_keeps_the_directory_scan() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("system/packages");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::create_dir_all(dir.path().join("system/state")).unwrap();
        std::fs::write(d.join("a.hpkg"), b"x").unwrap();
        assert!(!has_state(dir.path()));
        let spec = MountSpec::from_sources(&[dir.path().to_path_buf()], &[]).unwrap();
        let r = resolve_with(&spec, GenerationChoice::Current).unwrap();
        assert_eq!(r.packages.len(), 1);
        assert_eq!(r.generation, None);
        assert!(!r.check_dependencies);
        // No generations to choose from.
        assert!(matches!(
            resolve_with(&spec, GenerationChoice::Previous),
            Err(SourceError::NoGenerations(_))
        ));
    }

    #[test]
    fn generation_choices_parse() {
        assert_eq!(
            "previous".parse::<GenerationChoice>().unwrap(),
            GenerationChoice::Previous
        );
        assert_eq!(
            "12".parse::<GenerationChoice>().unwrap(),
            GenerationChoice::Number(12)
        );
        assert_eq!(
            "current".parse::<GenerationChoice>().unwrap(),
            GenerationChoice::Current
        );
        assert!("-1".parse::<GenerationChoice>().is_err());
        assert!("".parse::<GenerationChoice>().is_err());
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
