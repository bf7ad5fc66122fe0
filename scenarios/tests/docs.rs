//! The docs say what the code does: docs/catalogue.md is generated from the catalogue and must be up to date, the README counts what the catalogue holds, and every relative link in README.md, ARCHITECTURE.md and docs/ points at a file that exists.

use std::path::Path;
use std::process::Command;

const PAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/catalogue.md");
const REGENERATE: &str = "regenerate it: cargo run -p scenarios --bin clerk-harness -- scenarios --format markdown > docs/catalogue.md";

#[test]
fn the_checked_in_catalogue_reference_is_up_to_date() {
    let checked_in = std::fs::read_to_string(PAGE).unwrap_or_else(|e| panic!("{PAGE}: {e}; {REGENERATE}"));
    let generated = scenarios::catalogue_markdown(&scenarios::catalogue());
    if checked_in != generated {
        let first = checked_in.lines().zip(generated.lines()).position(|(a, b)| a != b).unwrap_or(checked_in.lines().count().min(generated.lines().count()));
        panic!(
            "docs/catalogue.md is stale (first difference at line {}):\n  checked in: {}\n  generated:  {}\n{REGENERATE}",
            first + 1,
            checked_in.lines().nth(first).unwrap_or("<end of file>"),
            generated.lines().nth(first).unwrap_or("<end of file>")
        );
    }
}

#[test]
fn every_scenario_has_a_row_and_every_row_a_scenario() {
    let all = scenarios::catalogue();
    let page = scenarios::catalogue_markdown(&all);
    let rows: Vec<&str> = page.lines().filter(|l| l.starts_with("| `")).collect();
    assert_eq!(rows.len(), all.len(), "one table row per scenario (a group missing from the page's sections drops its rows)");
    for s in &all {
        assert!(rows.iter().any(|r| r.starts_with(&format!("| `{}`<br>", s.id))), "{} has no row", s.id);
    }
    assert!(page.starts_with("# The scenario catalogue"), "{page:.200}");
}

#[test]
fn the_cli_prints_the_same_page() {
    let out = Command::new(env!("CARGO_BIN_EXE_clerk-harness")).args(["scenarios", "--format", "markdown"]).output().expect("clerk-harness");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), scenarios::catalogue_markdown(&scenarios::catalogue()));
    assert!(Path::new(PAGE).is_file());
}

#[test]
fn the_readmes_summary_counts_what_the_catalogue_holds() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).expect("README.md");
    let all = scenarios::catalogue();
    assert!(readme.contains(&format!("{} scenarios in nine groups", all.len())), "README.md: the catalogue has {} scenarios", all.len());
    let page = scenarios::catalogue_markdown(&all);
    // Each section of the generated page is `## name (N)`; the README's table row is `| name (N) |`.
    for heading in page.lines().filter_map(|l| l.strip_prefix("## ")) {
        assert!(readme.contains(&format!("| {heading} |")), "README.md's catalogue table should have a row `| {heading} | … |`");
    }
}

#[test]
fn every_relative_link_in_the_docs_points_at_a_file_that_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut pages = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    for entry in std::fs::read_dir(root.join("docs")).expect("docs/") {
        let path = entry.expect("docs/ entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    let mut broken = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        for (i, _) in text.match_indices("](") {
            let rest = &text[i + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = &rest[..end];
            if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") || target.contains(' ') {
                continue;
            }
            let file = target.split('#').next().unwrap_or(target);
            let resolved = page.parent().expect("a page's folder").join(file);
            if !resolved.exists() {
                broken.push(format!("{}: ({target}) → {}", page.display(), resolved.display()));
            }
        }
    }
    assert!(pages.len() > 5, "README.md, ARCHITECTURE.md and the docs/ pages: {pages:?}");
    assert!(broken.is_empty(), "links to files that do not exist:\n{}", broken.join("\n"));
}
