//! The README is the API's reference: every error code the code can answer with must be in
//! its error table, so a client author never meets an undocumented `code`.

use std::path::{Path, PathBuf};

/// Constructors whose first string-literal argument (after an optional `StatusCode::X,`) is a
/// stable error code.
const CONSTRUCTORS: [&str; 8] = [
    "Error::invalid(",
    "Error::unauthorized(",
    "Error::forbidden(",
    "Error::not_found(",
    "Error::conflict(",
    "ApiError::bad_request(",
    "ApiError::new(",
    "Self::new(",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code literal starting right after a constructor's `(`, if the call names one.
fn code_after(rest: &str) -> Option<&str> {
    let mut rest = rest.trim_start();
    if rest.starts_with("StatusCode::") {
        rest = rest[rest.find(',')? + 1..].trim_start();
    }
    let rest = rest.strip_prefix('"')?;
    let code = &rest[..rest.find('"')?];
    let is_code = !code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    is_code.then_some(code)
}

fn codes_in_source() -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let mut codes = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for ctor in CONSTRUCTORS {
            for (at, _) in text.match_indices(ctor) {
                if let Some(code) = code_after(&text[at + ctor.len()..]) {
                    codes.push(code.to_string());
                }
            }
        }
    }
    codes.sort();
    codes.dedup();
    codes
}

#[test]
fn every_error_code_the_server_uses_is_in_the_readme_error_table() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("| status | codes |").expect("README has an error table");
    let table: String = readme[start..].lines().take_while(|l| l.starts_with('|')).collect();
    let codes = codes_in_source();
    // The scan must see the codes we know are there, or it proves nothing.
    for known in [
        "room_not_found",
        "invalid_json",
        "method_not_allowed",
        "unavailable",
        "internal",
    ] {
        assert!(codes.iter().any(|c| c == known), "scan missed {known}: {codes:?}");
    }
    let missing: Vec<&String> = codes.iter().filter(|c| !table.contains(&format!("`{c}`"))).collect();
    assert!(
        missing.is_empty(),
        "codes missing from README's error table: {missing:?}"
    );
}
