//! The trust policy on a real root: untrusted drop-ins are refused by the
//! sync the daemon runs, and by `Root::change`; signed ones by a trusted key
//! are activated. And `Root::change` is one generation that one rollback
//! undoes.

mod common;

use std::fs;

use common::{Scratch, PLAIN};
use state::signing::{generate, SecretKey};
use state::{Error, Layer};

fn never(_: &state::ActivePackage) -> Option<fs::File> {
    None
}

#[test]
fn untrusted_drop_ins_are_refused_and_signed_ones_activated() {
    let s = Scratch::new();
    let layout = s.layout().clone();
    fs::create_dir_all(layout.settings_dir()).unwrap();
    fs::write(layout.policy_file(), "user require-vouched yes\n").unwrap();
    let before = s.root.current().unwrap().generation.number;

    let dropped = layout.package_file(Layer::User, "a.hpkg");
    fs::copy(common::fixtures().join(PLAIN[0]), &dropped).unwrap();
    let report = s.root.sync_from_dirs("sync", &never).unwrap();
    assert!(!report.commit.changed, "no new generation");
    assert_eq!(report.rejected.len(), 1);
    let why = &report.rejected[0].reason;
    assert!(why.contains("trust policy of the user layer"), "{why}");
    assert_eq!(s.root.current().unwrap().generation.number, before);
    let listed = s.root.untrusted_files().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].path, dropped);

    // The same package in the system layer, which requires nothing, is fine.
    let incoming = s.incoming(PLAIN[1], "b.hpkg");
    s.root
        .change(&[], &[&incoming], Layer::System, false, "b")
        .unwrap();
    // ... and refused for the user layer.
    match s.root.change(&[], &[&incoming], Layer::User, false, "b") {
        Err(Error::Untrusted {
            layer: Layer::User, ..
        }) => {}
        other => panic!("{other:?}"),
    }

    // Signed by a key the root trusts: activated by the next sync.
    let keys = generate(state::signing::Protection::Unencrypted, "k").unwrap();
    let key_file = s.dir.path().join("k.key");
    fs::write(&key_file, &keys.secret).unwrap();
    let sk = SecretKey::load(&key_file, None).unwrap();
    let sig = sk
        .sign(fs::File::open(&dropped).unwrap(), "a", &key_file)
        .unwrap();
    fs::write(layout.package_file(Layer::User, "a.hpkg.minisig"), sig).unwrap();
    fs::create_dir_all(layout.trust_dir()).unwrap();
    fs::write(layout.trust_dir().join("k.pub"), &keys.public).unwrap();
    let report = s.root.sync_from_dirs("sync", &never).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert!(s.root.untrusted_files().unwrap().is_empty());
    assert_eq!(report.commit.added.len(), 1);
}

#[test]
fn a_change_is_one_generation_and_one_rollback() {
    let s = Scratch::new();
    let a = s.incoming(PLAIN[0], "a.hpkg");
    let first = s.root.add(&[&a], Layer::System, false, "a").unwrap();
    let old = first.added[0].clone();
    let b = s.incoming(PLAIN[1], "b.hpkg");
    let c = s.incoming(PLAIN[2], "c.hpkg");
    let commit = s
        .root
        .change(
            std::slice::from_ref(&old),
            &[&b, &c],
            Layer::System,
            false,
            "swap",
        )
        .unwrap();
    assert_eq!(commit.generation.number, first.generation.number + 1);
    assert_eq!(commit.added.len(), 2);
    assert_eq!(commit.removed, vec![old.clone()]);
    // Removing what is no longer active is refused and commits nothing.
    assert!(matches!(
        s.root.change::<&std::path::Path>(
            std::slice::from_ref(&old),
            &[],
            Layer::System,
            false,
            "x"
        ),
        Err(Error::NotActive { .. })
    ));
    let back = s.root.rollback(None, "rollback").unwrap();
    let names: Vec<_> = back
        .generation
        .packages
        .iter()
        .map(|p| &p.file_name)
        .collect();
    assert_eq!(names, vec!["a.hpkg"]);
}
