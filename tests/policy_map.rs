//! The policy map (`docs/policy.md`) stays true: every test it names on a `Tests:` line
//! still exists, as `fn <name>` in the file given beside it, and every section of the
//! privacy policy (DigitalAPICraft, updated 28 June 2024: "DigitalAPICraft introduction
//! and scope of the privacy policy" to "Data Protection Officer") has a heading there.
//! A test renamed or removed, or a section dropped, fails here with its name.

use std::path::Path;

/// The map, as built.
const MAP: &str = include_str!("../docs/policy.md");

/// The privacy policy's section titles, in its order (the policy text itself is not in
/// the repository). Each must be a heading of the map, word for word.
const POLICY_SECTIONS: &[&str] = &[
    "DigitalAPICraft introduction and scope of the privacy policy",
    "Consent to be obtained",
    "How we collect and use your personal information",
    "Information you provide to us",
    "Information we collect automatically when you are using our services",
    "How We Use Your Information",
    "Legal Basis for Processing (For UK/EEA/Swiss Users)",
    "How we share information we collect",
    "How we store and secure information we collect",
    "How long we keep your information",
    "Data Security & Protection",
    "How to access and control your information",
    "CCPA Privacy Rights (Do Not Sell My Personal Information)",
    "GDPR Data Protection Rights",
    "How we transfer information we collect internationally",
    "Data Transfers Between DigitalAPICraft’s Global Offices",
    "Sharing Data with International Third Parties",
    "Our policy towards the Children",
    "Data Protection Officer",
];

/// A test the map names: the function and the file it is in.
#[derive(Debug)]
struct Named {
    line: usize,
    name: String,
    path: String,
}

/// The headings of the map, without their `#`s.
fn headings(map: &str) -> Vec<&str> {
    map.lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim())
        .collect()
}

fn is_ident(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Every `` `name` (path) `` of the lines starting with "Tests:"; a backticked name
/// without a path, or one that is not a function name, is a problem.
fn named_tests(map: &str) -> (Vec<Named>, Vec<String>) {
    let mut named = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in map.lines().enumerate() {
        let Some(mut rest) = line.trim_start().strip_prefix("Tests:") else {
            continue;
        };
        let line_no = i + 1;
        while let Some(open) = rest.find('`') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('`') else {
                problems.push(format!("line {line_no}: unclosed backtick"));
                break;
            };
            let name = &after[..close];
            rest = after[close + 1..].trim_start();
            let path = rest
                .strip_prefix('(')
                .and_then(|p| p.find(')').map(|end| (&p[..end], &p[end + 1..])));
            match path {
                Some((path, tail)) if is_ident(name) && !path.trim().is_empty() => {
                    named.push(Named {
                        line: line_no,
                        name: name.to_owned(),
                        path: path.trim().to_owned(),
                    });
                    rest = tail;
                }
                _ => problems.push(format!(
                    "line {line_no}: `{name}` is not written as `test_fn_name` (path/to/file.rs)"
                )),
            }
        }
    }
    (named, problems)
}

/// Whether `source` defines `fn <name>` (not merely a function whose name starts so).
fn defines(source: &str, name: &str) -> bool {
    let needle = format!("fn {name}");
    source.match_indices(&needle).any(|(at, _)| {
        let before_ok = source[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        let after_ok = source[at + needle.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        before_ok && after_ok
    })
}

#[test]
fn every_section_of_the_policy_has_a_heading_in_the_map() {
    let headings = headings(MAP);
    let missing: Vec<_> = POLICY_SECTIONS
        .iter()
        .filter(|section| !headings.contains(section))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/policy.md has no heading for these sections of the policy: {missing:?}"
    );
    // And in the policy's order.
    let positions: Vec<_> = POLICY_SECTIONS
        .iter()
        .filter_map(|section| headings.iter().position(|h| h == section))
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "docs/policy.md must keep the policy's sections in the policy's order"
    );
}

#[test]
fn every_test_the_map_names_exists_where_it_says() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (named, mut problems) = named_tests(MAP);
    assert!(
        named.len() >= 100,
        "docs/policy.md names only {} tests on its `Tests:` lines: is the format broken?",
        named.len()
    );
    for t in &named {
        let file = root.join(&t.path);
        match std::fs::read_to_string(&file) {
            Err(e) => problems.push(format!(
                "line {}: `{}`: cannot read {} ({e})",
                t.line, t.name, t.path
            )),
            Ok(source) if !defines(&source, &t.name) => problems.push(format!(
                "line {}: `{}` is not defined in {} (renamed or removed?)",
                t.line, t.name, t.path
            )),
            Ok(_) => {}
        }
    }
    assert!(
        problems.is_empty(),
        "docs/policy.md names tests that do not exist:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_parser_reads_names_and_paths_and_refuses_a_name_without_a_path() {
    let (named, problems) = named_tests(
        "Tests: `a_b` (tests/x.rs), `c` (services/y/tests/z.rs)\n  Tests: `d`\nnot `e` (f.rs)\n",
    );
    let pairs: Vec<_> = named
        .iter()
        .map(|t| (t.name.as_str(), t.path.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [("a_b", "tests/x.rs"), ("c", "services/y/tests/z.rs")]
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(defines("fn a_b() {}", "a_b"));
    assert!(!defines("fn a_b_c() {}", "a_b"));
    assert!(!defines("fn xa_b() {}", "a_b"));
}
