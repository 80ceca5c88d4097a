//! The reader against Haiku-built golden packages: every listing must equal its
//! `*.expected.jsonl` exactly (type, mode, size, sha256, link, xattrs).

mod common;

use common::{assert_listing_eq, expected, fixtures, listing};
use hpkg_format::Package;

#[test]
fn every_golden_package_lists_exactly() {
    let root = fixtures();
    let mut checked = 0;
    for sub in ["haiku", "haiku-tool"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for pkg_path in files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "hpkg"))
        {
            let pkg = Package::open(pkg_path).unwrap_or_else(|e| panic!("{e}"));
            let want = expected(&pkg_path.with_extension("expected.jsonl"));
            assert_listing_eq(&pkg_path.display().to_string(), &listing(&pkg), &want);
            checked += 1;
        }
    }
    assert_eq!(checked, 11, "expected 11 golden packages");
}
